"""The CPU this process runs on: its name and the vector units that decide which precision is fast.

Timings in this project are CPU seconds on whatever host ran them, and hosts differ: the same
``reproduce_mempo.py all --preset hour`` took 1.37x the CPU time on one 2-core host as on another.
Records that carry a timing name the host with :func:`describe_cpu`.

>>> isinstance(has_bf16_units(), bool)
True
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

# the flags that decide fp32 against bf16 speed (Linux /proc/cpuinfo names)
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=4)
def _cpuinfo(path: Path = CPUINFO) -> dict[str, str]:
    """The first processor's fields of a ``/proc/cpuinfo`` file (empty where it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``"unknown"`` where the OS does not say)."""
    return _cpuinfo(Path(cpuinfo)).get("model name") or "unknown"


def vector_flags(cpuinfo: Path = CPUINFO) -> tuple[str, ...]:
    """Which of :data:`VECTOR_FLAGS` this CPU has, in that order."""
    flags = set(_cpuinfo(Path(cpuinfo)).get("flags", "").split())
    return tuple(f for f in VECTOR_FLAGS if f in flags)


def has_bf16_units(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU does bf16 arithmetic natively (AVX512-BF16 or AMX-BF16); without them bf16
    autocast only adds conversions (``benchmarks/cpu_precision.py``)."""
    return any(f in vector_flags(cpuinfo) for f in ("avx512_bf16", "amx_bf16"))


def describe_cpu(cpuinfo: Path = CPUINFO) -> str:
    """One line naming the host for a timing: model, usable cores, vector units.

    >>> "cores" in describe_cpu()
    True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model(cpuinfo)}, {cores} cores, {' '.join(vector_flags(cpuinfo)) or 'no AVX2/AVX-512/AMX'}"
