"""Small real building blocks for tests: a title-lookup search tool and hand-made tasks."""

from __future__ import annotations

from typing import Any, Mapping

from mempo_gym.records import Question, Task


class TitleLookupSearch:
    """A SearchTool that returns the document whose title equals the query exactly."""

    def __init__(self, docs: Mapping[str, str]) -> None:
        self.docs = dict(docs)

    def search(self, query: str) -> str:
        text = self.docs.get(query.strip())
        return f"Doc 1 (Title: {query.strip()}) {text}" if text else "No results."

    def describe(self) -> dict[str, Any]:
        return {"name": "title-lookup", "docs": len(self.docs)}


DOCS = {
    "Tarsa": "Tarsa is a film directed by Mila Voss, released in 1987.",
    "Mila Voss": "Mila Voss is a director born in Kelvar.",
    "Kelvar": "Kelvar is a city in Dunmore.",
    "Oskel": "Oskel is a company founded in 1931.",
}

TASKS = [
    Task(id="bridge", source="hand", questions=(
        Question("In which city was the director of Tarsa born?", ("Kelvar",), ("Tarsa", "Mila Voss")),)),
    Task(id="two", source="hand", questions=(
        Question("Who directed Tarsa?", ("Mila Voss", "Voss"), ("Tarsa",)),
        Question("When was Oskel founded?", ("1931",), ("Oskel",)),
    )),
]


def tiny_llama(folder) -> str:
    """A small randomly initialised Llama with the default (SmolLM2) tokenizer, saved in ``folder``
    (a real transformers checkpoint for tests that need a model folder, loads in a second)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mempo_gym.tokenizer import load_hf_tokenizer

    tokenizer = load_hf_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)
