"""`mempo_agents.hardware`: naming the host of a timing from /proc/cpuinfo."""

from __future__ import annotations

import doctest
from pathlib import Path

from mempo_agents import hardware

INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni

processor\t: 1
model name\t: a second processor that is not read
"""
AMD = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_the_first_processor_is_read_and_bf16_units_are_recognised(tmp_path: Path) -> None:
    intel, amd = tmp_path / "intel", tmp_path / "amd"
    intel.write_text(INTEL)
    amd.write_text(AMD)
    assert hardware.cpu_model(intel) == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert hardware.vector_flags(intel) == ("avx2", "avx512f", "avx512_vnni")
    assert not hardware.has_bf16_units(intel)
    assert hardware.has_bf16_units(amd)
    assert hardware.describe_cpu(amd).startswith("AMD EPYC, ") and hardware.describe_cpu(amd).endswith(
        " cores, avx2 avx512f avx512_vnni avx512_bf16")


def test_an_unreadable_cpuinfo_says_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    assert hardware.cpu_model(missing) == "unknown"
    assert hardware.describe_cpu(missing).endswith("cores, no AVX2/AVX-512/AMX")


def test_doctests() -> None:
    assert doctest.testmod(hardware).failed == 0
