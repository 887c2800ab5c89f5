"""The ``"vllm"`` rollout engine: vLLM colocated with the trainer, in the trainer's own process.

The engine is built from the policy's weights and tokenizer, saved to a temporary folder
(``vllm.LLM`` loads a model folder), and samples the ``G`` completions of each prompt as one
request with ``n=G`` and prefix caching on, so the group's shared prompt is computed once
(what :mod:`~grpo_agent.policies.shared_prefix` does for the ``"hf"`` engine). Before each
rollout the algorithm calls :meth:`VLLMEngine.sync_weights`, which copies the policy's full
weights (with LoRA, the merged weights) into the engine in place and forgets the prefix cache
computed with the old ones. On a GPU, the engine sleeps between rollouts (its weights offloaded
and its KV cache freed, vLLM's sleep mode, as TRL's colocate mode does) so that the update has
the memory; vLLM's CPU build has no sleep mode.

Facts this module relies on (vLLM 0.32, CPU build):

- ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps the engine in the caller's process: the weights
  can then be handed over as tensors, without a copy through a pipe.
- the worker's ``reload_weights(weights_iterator=...)`` swaps the weights in place (milliseconds
  for the tiny model); the model's own ``load_weights`` fails on the CPU build.
- ``logprobs_mode="processed_logprobs"`` returns the log-probs of the distribution sampled
  from (after temperature, and after top-p when ``top_p < 1``); the default, raw, ignores the
  temperature.
- the CPU attention kernels take only some head sizes (16 is refused at the first forward,
  after a start of ~15 s): :func:`check_head_size` refuses such a model before the start.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from grpo_agent.engines.base import RolloutEngine
from grpo_agent.engines.vllm_support import DEFAULT_GPU_MEMORY_UTILIZATION, INSTALL_HINT, vllm_available
from grpo_agent.policies.base import BasePolicy, CompletionBatch
from grpo_agent.policies.causal_lm import CausalLMPolicy


def attention_head_size(config: Any) -> int:
    """The attention head size of a transformers model config."""
    head_dim = getattr(config, "head_dim", None)
    return int(head_dim) if head_dim else int(config.hidden_size // config.num_attention_heads)


def check_head_size(config: Any, supported: Sequence[int]) -> None:
    """Refuse a model whose attention head size the engine's kernels do not take.

    :raises ValueError: naming the head size, the supported ones, and the fix for the tiny policy.
    """
    head = attention_head_size(config)
    if head not in supported:
        heads = max(1, config.hidden_size // 64)
        raise ValueError(
            f"vLLM's attention kernels on this machine take head sizes {sorted(supported)}, and this model's is "
            f"{head} (hidden_size {config.hidden_size} / {config.num_attention_heads} heads): choose a head count that "
            f"gives a supported size (the tiny policy: policy_kwargs={{'tiny_config': {{'num_attention_heads': "
            f"{heads}}}}} gives {config.hidden_size // heads}), or use generation_backend='hf'"
        )


def merged_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The model's weights under the names of a plain Hugging Face checkpoint. A peft model must
    have its adapters merged into the base weights (``merge_adapter``) before the call: the
    adapters' own tensors are left out and peft's wrapping is stripped from the names."""
    state = model.state_dict()
    if not hasattr(model, "peft_config"):
        return dict(state)
    weights = {}
    for name, tensor in state.items():
        if "lora_" in name or ".modules_to_save." in name:
            continue
        name = name.removeprefix("base_model.model.").replace(".base_layer", "")
        weights[name] = tensor
    return weights


@contextmanager
def _caller_rng_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global RNGs after the block: an engine in this
    process seeds them all at start, which would otherwise restart the agent's random streams."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


@contextmanager
def _quiet_vllm_logger(name: str) -> Iterator[None]:
    """Silence one vLLM logger below ERROR for a moment (see :meth:`VLLMEngine.sync_weights`)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class VLLMEngine(RolloutEngine):
    """Samples a :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy` with vLLM, in this process.

    :param policy: the policy (the tiny policy or any Hugging Face causal LM).
    :param gpu_memory_utilization: the share of the GPU's memory vLLM reserves for its weights
        and KV cache (TRL's ``vllm_gpu_memory_utilization``); on vLLM's CPU build, the share of
        RAM that this whole process (the trainer included) may reach, the KV cache taking the rest.
    :param seed: seeds vLLM's own sampler (a run with the same seed samples the same completions).
    """

    name = "vllm"
    exact_log_probs = False

    def __init__(
        self, policy: BasePolicy, gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION, seed: int = 0
    ) -> None:
        if not isinstance(policy, CausalLMPolicy):
            raise TypeError(
                f"generation_backend='vllm' samples language models (CausalLMPolicy, the tiny policy); "
                f"{type(policy).__name__} samples with generation_backend='hf'"
            )
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"vllm_gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        if not vllm_available():
            raise ImportError(INSTALL_HINT)
        super().__init__(policy)
        self.lm: CausalLMPolicy = policy
        # Before vLLM is imported: it reads its environment once, at import.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in this process: weights pass as tensors
        # Its INFO lines would drown the training log, and on CPU its warnings are advice repeated
        # at every call (thread binding, LD_PRELOAD); errors still show. Set it to see them.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        from vllm import LLM
        from vllm.platforms import current_platform

        self._on_cpu = bool(current_platform.is_cpu())
        if self._on_cpu:
            from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

            check_head_size(policy.model.config, CPUAttentionBackend.get_supported_head_sizes())
        self._folder = tempfile.mkdtemp(prefix="grpo-vllm-")
        # deleted by close(), or when the engine is collected or the process exits
        self._remove_folder = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        policy.save_pretrained(self._folder)  # weights (LoRA merged) and tokenizer
        self._sleep_mode = not self._on_cpu  # vLLM's CPU build has no sleep mode
        try:
            with _caller_rng_kept():
                self.llm = LLM(
                    model=self._folder,
                    dtype=str(policy.torch_dtype).removeprefix("torch."),
                    seed=seed,
                    gpu_memory_utilization=gpu_memory_utilization,
                    enable_prefix_caching=True,  # a group's G completions share their prompt
                    logprobs_mode="processed_logprobs",
                    # no graph capture: it would lengthen every run's start, and the CPU build has none
                    enforce_eager=True,
                    enable_sleep_mode=self._sleep_mode,
                    use_tqdm_on_load=False,
                )
        except (ValueError, RuntimeError, torch.OutOfMemoryError) as exc:
            if "memory" in str(exc).lower():
                counts = "this whole process's RAM (trainer included)" if self._on_cpu else "the GPU's memory"
                raise RuntimeError(
                    f"vLLM could not reserve memory for the engine ({exc}); vllm_gpu_memory_utilization (now "
                    f"{gpu_memory_utilization}) is the share of {counts} it may use: raise it if the KV cache came out "
                    "too small, lower it if the trainer needs more, or use generation_backend='hf'"
                ) from exc
            raise
        self._asleep = False

    # -- weights ------------------------------------------------------------------------------

    def sync_weights(self) -> None:
        """Copy the policy's current weights into the engine, in place (milliseconds for the
        tiny model: cheaper than tracking whether they changed), then forget the prefix cache,
        whose keys and values were computed with the old ones."""
        self._wake()
        model = self.lm.model
        merged = self.lm.lora_config is not None
        with torch.no_grad():
            if merged:
                model.merge_adapter()
            try:
                weights = merged_state_dict(model)
                # vLLM warns that its rotary-embedding layer "failed to load weights" on every
                # reload: the layer's cos/sin table is computed, never part of a checkpoint.
                with _quiet_vllm_logger("vllm.model_executor.model_loader.reload.layerwise"):
                    self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights.items())})
            finally:
                if merged:
                    model.unmerge_adapter()
        self.llm.reset_prefix_cache()

    # -- sampling -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, observations: Sequence[Any], n: int) -> CompletionBatch:
        """``n`` completions per observation, one vLLM request of ``n`` samples per prompt."""
        from vllm import SamplingParams

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        policy = self.lm
        encoded = [policy.encode_context(o) for o in observations]
        params = SamplingParams(
            n=n,
            temperature=policy.temperature,
            top_p=policy.top_p,
            max_tokens=policy.max_new_tokens,
            logprobs=0,  # the sampled token's own log-prob
            stop_token_ids=list(policy.eos_token_ids),
            detokenize=False,  # the policy's tokenizer writes the actions
            # No per-request seed: vLLM 0.32's CPU runner crashes ("CPU Generator does not use
            # offset") when chunked prefill splits a seeded request; the engine's own sampler,
            # seeded at start, makes a seeded run repeat itself.
        )
        self._wake()
        try:
            outputs = self.llm.generate([{"prompt_token_ids": c} for c in encoded], params, use_tqdm=False)
        except RuntimeError as exc:
            if "memory" in str(exc).lower():
                raise RuntimeError(
                    f"vLLM ran out of memory sampling {len(encoded)} x {n} completions ({exc}); raise "
                    "vllm_gpu_memory_utilization, or lower n_groups or max_new_tokens"
                ) from exc
            raise
        finally:
            if self._sleep_mode:
                self.llm.sleep(level=1)  # give the update the accelerator's memory
                self._asleep = True
        samples = [sample for request in outputs for sample in request.outputs]
        width = max(1, *(len(s.token_ids) for s in samples))
        pad = int(policy.tokenizer.pad_token_id)
        tokens = torch.full((len(samples), width), pad, dtype=torch.long)
        logp = torch.zeros((len(samples), width), dtype=torch.float32)
        for i, s in enumerate(samples):
            ids = list(s.token_ids)
            tokens[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            logp[i, : len(ids)] = torch.as_tensor([step[t].logprob for step, t in zip(s.logprobs, ids)])
        length = torch.as_tensor([len(s.token_ids) for s in samples], dtype=torch.long)
        own = torch.arange(width).unsqueeze(0) < length.unsqueeze(1)
        ended = torch.as_tensor([s.finish_reason == "stop" for s in samples])
        rows = [o for o in observations for _ in range(n)]
        contexts = [c for c in encoded for _ in range(n)]
        return policy.completion_batch(rows, contexts, tokens, own, logp, length, ~ended)

    def _wake(self) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False

    def close(self) -> None:
        """Shut the engine down and delete its model folder."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            shutdown = getattr(llm.llm_engine, "shutdown", None)
            if callable(shutdown):
                shutdown()
            del self.llm
        self._remove_folder()
