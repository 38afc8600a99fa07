"""Local generation with ``transformers``: any local causal LM, or the embedded SmolLM2.

Batched generation pads on the left, stops each row at its first stop string
(``</search>``/``</answer>``, kept in the text), samples with ``temperature``/``top_p``
from a seeded RNG (greedy when ``temperature=0``), and can run in bfloat16 on CPU. With
``prefix_cache_tokens`` > 0, greedy calls reuse the keys and values of earlier prompts' shared
prefixes (:mod:`~mempo_agents.backends.prefix_cache`); sampling always recomputes.

Chat templates: with ``chat_template=True`` (the default when the tokenizer has one, as
instruct models do) each prompt (the environment's context) becomes the single user
message and the model writes the assistant reply. The template's extra tokens (system
prompt, role markers) are NOT counted by the environment's meter, which counts only the
context text; the backend reports them in ``Generation.usage["template_tokens"]`` so they
can be compared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mempo_gym.core.protocol import StopDetector

from mempo_agents.backends.base import (
    DEFAULT_STOP, BackendError, Generation, cut_after_stop, validate_generate_args,
)
from mempo_agents.backends.embedded_model import EMBEDDED_MODEL_NAME, load_embedded_model
from mempo_agents.backends.prefix_cache import PrefixCache, greedy_generate

DTYPES = ("float32", "bfloat16")


class StopStringCriteria:
    """Per-row stop when the generated text contains a stop string (transformers
    ``StoppingCriteria`` over the env's :class:`~mempo_gym.core.protocol.StopDetector`)."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_length: int) -> None:
        self.stop, self.prompt_length = tuple(stop), prompt_length
        self.detector = StopDetector(tokenizer, self.stop)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stop or input_ids.shape[1] <= self.prompt_length:
            return done
        for row in range(input_ids.shape[0]):
            done[row] = self.detector.completes_stop(input_ids[row, self.prompt_length:].tolist())
        return done


class TransformersBackend:
    """Generates with a local ``transformers`` causal LM.

    Args:
        model: ``None`` or ``"smollm2-135m-instruct"`` for the embedded default, a local
            checkpoint folder, a LoRA adapter folder (``adapter_config.json``; loaded over its
            base and merged), or an already loaded model object.
        tokenizer: a tokenizer object or folder; default: the model folder's tokenizer, or
            :func:`mempo_gym.tokenizer.load_tokenizer` for the embedded model.
        dtype: ``"float32"`` or ``"bfloat16"`` (bf16 halves memory; speed depends on the CPU).
        chat_template: wrap each prompt as a user message; ``None`` = on when the tokenizer
            has a chat template.
        system_prompt: system message used with the chat template (``None`` keeps the
            template's default).
        num_threads: ``torch.set_num_threads`` value (``None`` leaves torch's default).
        prefix_cache_tokens: keep the keys and values of up to this many positions of recent
            prompts and reuse their longest shared prefix in greedy generation
            (:mod:`~mempo_agents.backends.prefix_cache`); 0 (the default) recomputes every prompt.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        tokenizer: Any = None,
        dtype: str = "float32",
        chat_template: bool | None = None,
        system_prompt: str | None = None,
        num_threads: int | None = None,
        prefix_cache_tokens: int = 0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from mempo_gym.tokenizer import load_hf_tokenizer

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        if model is None or model == EMBEDDED_MODEL_NAME:
            self.model_name = EMBEDDED_MODEL_NAME
            self.model = load_embedded_model()
            self.tokenizer = load_hf_tokenizer(tokenizer)
        elif isinstance(model, (str, os.PathLike)) and (Path(model).expanduser() / "adapter_config.json").is_file():
            from mempo_agents.trainer.policy import load_policy_model

            path = Path(model).expanduser()
            self.model_name = str(path)
            # a LoRA adapter over its base (the embedded SmolLM2 by name), merged for inference
            self.model = load_policy_model(path).merge_and_unload()
            self.tokenizer = load_hf_tokenizer(tokenizer if tokenizer is not None else (
                str(path) if (path / "tokenizer.json").is_file() else None))
        elif isinstance(model, (str, os.PathLike)):
            path = Path(model).expanduser()
            if not (path / "config.json").is_file():
                raise BackendError(
                    f"model {str(model)!r} is not a local checkpoint folder (no config.json). Pass a "
                    f"folder saved with save_pretrained, None for the embedded {EMBEDDED_MODEL_NAME}, "
                    "or an http(s) URL for an OpenAI-compatible server. Nothing is downloaded."
                )
            self.model_name = str(path)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
            if tokenizer is not None:
                self.tokenizer = load_hf_tokenizer(tokenizer)
            else:
                try:
                    self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                except Exception as err:
                    raise BackendError(
                        f"no usable tokenizer in {str(path)!r} ({type(err).__name__}); save one there "
                        "with tokenizer.save_pretrained(folder) or pass tokenizer=<folder or object>"
                    ) from err
        else:
            if tokenizer is None:
                raise TypeError("pass tokenizer=... together with a model object")
            self.model_name = str(getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__)
            self.model = model
            self.tokenizer = load_hf_tokenizer(tokenizer)
        self.dtype = dtype
        self.model = self.model.to(torch.bfloat16 if dtype == "bfloat16" else torch.float32)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat_template and not has_template:
            raise BackendError(f"chat_template=True but the tokenizer of {self.model_name!r} has no chat template")
        self.chat_template = has_template if chat_template is None else bool(chat_template)
        self.system_prompt = system_prompt
        if int(prefix_cache_tokens) < 0:
            raise ValueError(f"prefix_cache_tokens must be >= 0 (0 = off), got {prefix_cache_tokens}")
        self.prefix_cache = PrefixCache(int(prefix_cache_tokens)) if prefix_cache_tokens else None

    # ------------------------------------------------------------------ prompts
    def format_prompt(self, prompt: str) -> str:
        """The exact text the model reads for ``prompt`` (chat-wrapped when enabled)."""
        if not self.chat_template:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        stop: Sequence[str] = DEFAULT_STOP,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """Batched generation; see the module docstring."""
        import torch
        from transformers import StoppingCriteriaList

        validate_generate_args(prompts, max_new_tokens, stop, temperature, top_p)
        if not prompts:
            return []
        texts = [self.format_prompt(p) for p in prompts]
        eos = self.tokenizer.eos_token_id
        finish_ids = {t for t in (eos, self.tokenizer.pad_token_id) if t is not None}
        if self.prefix_cache is not None and temperature == 0:
            rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            detector = StopDetector(self.tokenizer, tuple(stop))
            new_tokens = greedy_generate(
                self.model, rows, self.prefix_cache, max_new_tokens, pad_id=int(self.tokenizer.pad_token_id),
                finish_ids=finish_ids, is_done=lambda ids: bool(stop) and detector.completes_stop(ids),
            )
            return self._generations(prompts, texts, new_tokens, finish_ids, stop)
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": eos,
            "stopping_criteria": StoppingCriteriaList(
                [StopStringCriteria(self.tokenizer, stop, batch["input_ids"].shape[1])]
            ),
        }
        if temperature > 0:
            options.update(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=0)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(int(seed))
            out = self.model.generate(**batch, **options)
        return self._generations(prompts, texts, out[:, batch["input_ids"].shape[1]:].tolist(), finish_ids, stop)

    def _generations(self, prompts: list[str], texts: list[str], new_tokens: list[list[int]],
                     finish_ids: set[int], stop: Sequence[str]) -> list[Generation]:
        """Each row's text cut at its first finish token or stop string, with its token counts."""
        results = []
        for prompt, text_in, row in zip(prompts, texts, new_tokens):
            ids = row
            ends = [ids.index(t) for t in finish_ids if t in ids]  # finished rows are padded
            ended_by_eos = bool(ends)
            if ends:
                ids = ids[: min(ends)]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text, stopped = cut_after_stop(text, stop)
            finish = "stop" if stopped or ended_by_eos else "length"
            prompt_tokens = self._count(text_in)
            results.append(
                Generation(
                    text=text,
                    finish_reason=finish,
                    usage={
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(ids),
                        "template_tokens": prompt_tokens - self._count(prompt),
                    },
                )
            )
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.model_name,
            "dtype": self.dtype,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            # only when on, so run folders written without the cache still resume
            **({"prefix_cache_tokens": self.prefix_cache.max_tokens} if self.prefix_cache is not None else {}),
        }

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model_name!r}, dtype={self.dtype!r}, chat_template={self.chat_template})"
