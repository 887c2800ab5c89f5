#!/usr/bin/env bash
# Creates the project's virtual environment and installs grpo-gym into it (editable).
#
# torch goes in first, on purpose: on a machine without an NVIDIA GPU we install the CPU
# build of torch 2.13.0, so that the agent's `torch>=2.6,<3` requirement is already met and
# pip never pulls several GB of CUDA wheels. Outside machines that carry a local CPU wheel,
# point TORCH_INDEX_URL at a CPU index (e.g. https://download.pytorch.org/whl/cpu).
set -euo pipefail

venv=${1:-.venv}
extras=${GRPO_EXTRAS:-agent,test}

python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; installing torch with CUDA from the package index"
    "${pip[@]}" install --quiet "torch>=2.6,<3"
else
    echo "setup: no GPU; installing the CPU build of torch 2.13.0"
    "${pip[@]}" install --quiet "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi

"${pip[@]}" install --quiet -e ".[${extras}]"
echo "setup: done ($venv)"
