"""The layering rules, checked on the source (every import statement, also inside functions).

* ``mempo_gym.core`` imports nothing above it: only ``mempo_gym.core.*`` and the leaf modules
  (records, metrics, prompts, tokenizer, paths, version), which import nothing above core.
* ``mempo_gym`` never imports ``mempo_agents``.
* ``mempo_agents`` uses only public ``mempo_gym`` names: no module or name starting with ``_``,
  and a name from a module that declares ``__all__`` must be in it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAVES = {"mempo_gym.records", "mempo_gym.metrics", "mempo_gym.prompts", "mempo_gym.tokenizer",
          "mempo_gym.paths", "mempo_gym.version"}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of every import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def test_core_imports_nothing_above_it() -> None:
    allowed = lambda m: m == "mempo_gym.core" or m.startswith("mempo_gym.core.") or m in LEAVES  # noqa: E731
    files = list((ROOT / "mempo_gym" / "core").glob("*.py"))
    files += [ROOT / (m.replace(".", "/") + ".py") for m in LEAVES]
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}" for f in files for mod, _, line in imports(f)
           if mod.startswith("mempo_gym") and not allowed(mod)]
    assert not bad, "\n".join(bad)


def test_mempo_gym_never_imports_mempo_agents() -> None:
    bad = [f"{f.relative_to(ROOT)}:{line}" for f in (ROOT / "mempo_gym").rglob("*.py")
           for mod, _, line in imports(f) if mod.split(".")[0] in ("mempo_agents", "agents")]
    assert not bad, "mempo_gym imports mempo_agents at " + ", ".join(bad)


def test_the_modules_agents_use_declare_their_public_names() -> None:
    for mod in ("mempo_gym.core.protocol", "mempo_gym.core.context", "mempo_gym.core.env", "mempo_gym.paths",
                "mempo_gym.tokenizer", "mempo_gym.rollout", "mempo_gym.memory", "mempo_gym.core.tokens"):
        assert isinstance(importlib.import_module(mod).__all__, list)


def test_agents_use_only_public_mempo_gym_names() -> None:
    bad = []
    for f in (ROOT / "agents").rglob("*.py"):
        for mod, names, line in imports(f):
            if not mod.startswith("mempo_gym"):
                continue
            where = f"{f.relative_to(ROOT)}:{line}"
            if any(part.startswith("_") for part in mod.split(".")):
                bad.append(f"{where} imports the private module {mod}")
                continue
            module = importlib.import_module(mod)
            public = getattr(module, "__all__", None)
            for name in names:
                submodule = hasattr(module, "__path__") and importlib.util.find_spec(f"{mod}.{name}") is not None
                if name.startswith("_") or (public is not None and name not in public and not submodule):
                    bad.append(f"{where} imports {mod}.{name}, which is not public")
    assert not bad, "\n".join(bad)
