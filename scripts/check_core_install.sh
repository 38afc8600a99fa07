#!/usr/bin/env bash
# The lean install: `pip install .` (no extras) into a fresh virtual environment, `pip check`,
# then gym.make + one oracle episode + evaluate(), with torch/transformers absent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/core-venv"
python -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check .
"$venv/bin/python" -m pip check
echo "core install: $("$venv/bin/python" -m pip list --format=freeze 2>/dev/null | wc -l) packages, $(du -sh "$venv" | cut -f1)"
cd "$(dirname "$venv")"  # not the checkout: import the installed package
MEMPO_GYM_CACHE="$(dirname "$venv")/cache" "$venv/bin/python" - <<'PY'
import importlib.util
import gymnasium as gym
import mempo_gym
from mempo_gym.agent import make_agent

for absent in ("torch", "transformers", "matplotlib"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed in the core venv"
env = gym.make("MemPO-SynthWiki-v0")
agent = make_agent("oracle")
obs, info = env.reset(seed=0)
agent.reset(env.unwrapped.task)
while True:
    obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
    if terminated or truncated:
        break
frame = mempo_gym.evaluate(["MemPO-SynthWiki-v0"], agent, episodes=3, seed=0, progress=False)
print(f"core install plays episodes: reward {reward}, f1 {info['metrics']['f1']}, evaluate() mean f1 {frame.f1.mean():.2f}")
PY
