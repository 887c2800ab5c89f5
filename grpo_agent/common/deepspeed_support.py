"""DeepSpeed ZeRO stages 1 and 2 for a policy's optimiser, through ``accelerate launch``.

Under ZeRO-1 each of the W processes keeps 1/W of AdamW's moments and of the fp32 master
weights; ZeRO-2 shards the averaged gradients too (they are reduce-scattered instead of
all-reduced). The bf16 (or fp32) weights themselves stay whole in every process, so sampling,
the reference forward and checkpoints need nothing gathered: this is data parallelism with the
optimiser's memory divided by W. For the weights' memory too (ZeRO-3), use FSDP2
(:mod:`grpo_agent.policies.sharding`, ``configs/accelerate/fsdp.yaml``).

DeepSpeed's engine owns what :meth:`~grpo_agent.common.base_class.BaseAlgorithm._gradient_step`
does otherwise: the backward pass (``engine.backward``, which reduces the gradients), the
clipping of the global norm (DeepSpeed's ``gradient_clipping``, set to the agent's
``max_grad_norm``) and the step (``engine.step``) of the agent's own optimiser, which DeepSpeed
wraps (``zero_allow_untested_optimizer``): the learning-rate schedule still sets its
``param_groups``. A step whose gradient norm is not finite is skipped by DeepSpeed in every
process (its ``compute_grad_norm`` and, for bf16, ``check_grad_overflow`` are on by default), and
counted in the agent optimiser's ``skipped_steps`` where it has one
(:class:`~grpo_agent.run.faults.FiniteGuardAdamW`, which DeepSpeed's skip then never reaches).

Checkpoints hold whole tensors, written by rank 0 (:func:`full_optimizer_state_dict`): the
weights, and AdamW's state gathered from the shards and keyed by parameter name, the format of
an FSDP checkpoint, so it loads with or without DeepSpeed, and a checkpoint of any run loads
under it (:func:`load_full_state`).

DeepSpeed is optional (``pip install 'grpo-gym[deepspeed]'``): this module imports it only when
a plan is used. On a machine without CUDA its CPU accelerator is chosen (``DS_ACCELERATOR=cpu``)
and talks over gloo; its first start there compiles a small shared-memory op (a C++ compiler is
needed; the build is cached in ``~/.cache/torch_extensions``).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from grpo_agent.common import distributed

INSTALL_HINT = (
    "DeepSpeed is not installed: pip install 'grpo-gym[deepspeed]' (on a machine with torch already installed, "
    "DS_BUILD_OPS=0 pip install --no-build-isolation 'deepspeed>=0.19,<0.20' keeps that torch)"
)


@dataclass(frozen=True)
class ZeroPlan:
    """How DeepSpeed partitions the optimiser over the processes of the default process group.

    :param stage: 1 shards AdamW's moments and the fp32 master weights; 2 the gradients as well.
    :param offload_optimizer: keep the optimiser's shards (moments and master weights) in CPU
        memory and step them there (DeepSpeed's ``offload_optimizer: {device: cpu}``); the
        agent's own optimiser runs there (``zero_force_ds_cpu_optimizer: false``).
    """

    stage: int = 2
    offload_optimizer: bool = False

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            instead = (
                "for sharded weights launch with configs/accelerate/fsdp.yaml (FSDP2 full shard, ZeRO-3's memory)"
                if self.stage == 3
                else "plain data parallelism is configs/accelerate/ddp.yaml"
            )
            raise ValueError(
                f"DeepSpeed ZeRO stage {self.stage} is not supported: grpo-gym runs stages 1 and 2 "
                f"(configs/accelerate/deepspeed_zero2.yaml); {instead}"
            )

    @classmethod
    def from_accelerate_environment(cls) -> ZeroPlan | None:
        """The plan an accelerate config file asked for, or None when it asked for no DeepSpeed.

        ``accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml`` passes the
        file's ``deepspeed_config`` to every process in ``ACCELERATE_DEEPSPEED_*`` variables (or
        names a DeepSpeed JSON file); accelerate's own
        :class:`~accelerate.utils.DeepSpeedPlugin` reads them, so the keys mean what they mean for
        any accelerate script. The batch sizes and the clipping are the agent's own (``auto``).

        :raises ValueError: for a config this package does not run (one sentence says why).
        """
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() not in ("1", "true"):
            return None
        if importlib.util.find_spec("deepspeed") is None:
            raise ValueError(INSTALL_HINT)
        select_accelerator()
        from accelerate.utils import DeepSpeedPlugin

        config = DeepSpeedPlugin().deepspeed_config
        zero = config.get("zero_optimization", {})
        plan = cls(
            stage=int(zero.get("stage", 0)), offload_optimizer=zero.get("offload_optimizer", {}).get("device") == "cpu"
        )  # refuses stages other than 1 and 2
        accumulation = config.get("gradient_accumulation_steps", "auto")
        if accumulation not in ("auto", 1):
            raise ValueError(
                f"the DeepSpeed config asks for gradient_accumulation_steps={accumulation}: grpo-gym steps once "
                "per minibatch; leave it out (or 'auto') and choose --batch-size"
            )
        clipping = config.get("gradient_clipping", "auto")
        if clipping != "auto":
            raise ValueError(
                f"the DeepSpeed config sets gradient_clipping={clipping}: leave it out (or 'auto'); the agent's "
                "max_grad_norm (1.0 unless given) sets DeepSpeed's"
            )
        if str(zero.get("offload_param", {}).get("device", "none")) != "none":
            raise ValueError(
                "offload_param_device is ZeRO-3's (weights offloaded), which grpo-gym does not run under DeepSpeed; "
                "launch with configs/accelerate/fsdp_offload.yaml instead"
            )
        if str(zero.get("offload_optimizer", {}).get("device", "none")) not in ("none", "cpu"):
            raise ValueError("offload_optimizer_device may be none or cpu: NVMe offload is not supported")
        return plan


def select_accelerator() -> None:
    """DeepSpeed's CPU accelerator on a machine without CUDA (it would pick it itself, with a
    warning that there might be an accelerator it missed)."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def deepspeed_config(plan: ZeroPlan, dtype: torch.dtype, max_grad_norm: float | None) -> dict[str, Any]:
    """The DeepSpeed config of ``plan`` for a network of ``dtype``.

    The batch sizes are nominal (the agent feeds its own minibatches and calls ``step`` after
    each); DeepSpeed only checks that they agree. bf16 is on exactly when the weights are bf16:
    the policy's ``dtype`` decides, as it does without DeepSpeed.
    """
    zero: dict[str, Any] = {"stage": plan.stage}
    if plan.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "train_batch_size": distributed.world_size(),
        "gradient_clipping": float(max_grad_norm or 0.0),
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        # The agent's optimiser (AdamW) is DeepSpeed's "client" optimiser; with the optimiser
        # offloaded it steps on the CPU too, without DeepSpeed's compiled CPU Adam.
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 2**62,  # the agent logs its own metrics
    }


def initialize(
    policy: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: ZeroPlan, max_grad_norm: float | None
) -> Any:
    """DeepSpeed's engine over ``policy`` and the agent's ``optimizer`` (built over the trainable
    parameters), in the running process group; every process calls it.

    :return: the engine (``deepspeed.DeepSpeedEngine``); ``optimizer`` then steps this
        process's partition, and its ``param_groups`` still set the learning rate.
    """
    select_accelerator()
    try:
        import deepspeed
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    # DeepSpeed 0.19's ZeRO all-gathers the updated partitions with torch's
    # all_gather_into_tensor, which torch 2.13 deprecates (the warning names torch's
    # c10d_logger, whatever we pass): the call is DeepSpeed's own, in every step.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.distributed\.all_gather_into_tensor` is deprecated", category=FutureWarning
    )
    trainable = [p for p in policy.parameters() if p.requires_grad]
    config = deepspeed_config(plan, trainable[0].dtype, max_grad_norm)
    # DeepSpeed warns that a client optimiser is "untested" with ZeRO; this one is tested here
    # (tests/test_distributed.py: the same update as one process), so its warning is left out.
    ds_logger = logging.getLogger("DeepSpeed")
    level = ds_logger.level
    ds_logger.setLevel(logging.ERROR)
    try:
        engine, _, _, _ = deepspeed.initialize(
            model=policy, optimizer=optimizer, config=config, dist_init_required=False
        )
    finally:
        ds_logger.setLevel(level)
    return engine


def backward_and_step(engine: Any, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """Backpropagate ``loss`` through the engine (gradients averaged over the processes and,
    under ZeRO-2, partitioned), clip, and step; every process calls it. A step DeepSpeed skipped
    (a non-finite gradient norm) is counted in ``optimizer.skipped_steps`` where it has that counter.

    :return: the global gradient norm before clipping (inf for a skipped step).
    """
    engine.backward(loss)
    engine.step()
    norm = engine.get_global_grad_norm()
    norm = float("nan") if norm is None else float(norm)
    if not math.isfinite(norm) and hasattr(optimizer, "skipped_steps"):
        optimizer.skipped_steps += 1
    return norm


def _trainable(network: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in network.named_parameters() if p.requires_grad]


def full_optimizer_state_dict(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimiser's state gathered from every process's partition, keyed by parameter name
    (torch.distributed.checkpoint's full format, as an FSDP checkpoint), in CPU memory on rank 0
    ({} on the others); every process must call it."""
    from deepspeed.utils import safe_get_full_optimizer_state

    main = distributed.is_main_process()
    # Every parameter of a group shares the group's step count (DeepSpeed steps one flat partition).
    steps = [optimizer.state[group["params"][0]].get("step") for group in optimizer.param_groups]
    step = next((s for s in steps if s is not None), None)
    state: dict[str, dict[str, Any]] = {}
    keys = [k for k, v in optimizer.state[optimizer.param_groups[0]["params"][0]].items() if k != "step"]
    for name, param in _trainable(network):
        entry: dict[str, Any] = {}
        for key in keys:  # each gather is a collective: every process runs the same loop
            full = safe_get_full_optimizer_state(param, key)
            if main and full is not None:
                entry[key] = full.detach().to("cpu", copy=True)
        if main and entry:
            if step is not None:
                entry["step"] = torch.as_tensor(step, dtype=torch.float32).detach().clone().cpu()
            state[name] = entry
    if not main:
        return {}
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    return {"state": state, "param_groups": [{**hyper, "params": [name for name, _ in _trainable(network)]}]}


def whole_state_dict(network: torch.nn.Module) -> dict[str, Any]:
    """``network.state_dict()`` copied to CPU memory on rank 0 ({} on the others): under ZeRO-1/2
    every process holds the whole weights, as views into DeepSpeed's flat buffer, which a plain
    save would write whole for every tensor that shares it."""
    if not distributed.is_main_process():
        return {}
    return {k: _cpu_copy(v) for k, v in network.state_dict().items()}


def _cpu_copy(value: Any) -> Any:
    """``value`` with every tensor in it (a policy's extra state nests them in dicts) copied to CPU memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return value


def load_full_state(
    engine: Any, network: torch.nn.Module, optimizer: torch.optim.Optimizer, optimizer_state: Mapping[str, Any]
) -> None:
    """After ``network.load_state_dict(...)``: make DeepSpeed's fp32 master weights those loaded
    weights, and load ``optimizer_state`` (keyed by parameter name, or numbered as
    ``Optimizer.state_dict`` numbers the trainable parameters) into this process's partition.
    Every process calls it with the same state; nothing is communicated."""
    from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

    named = _trainable(network)
    for _, param in named:
        safe_set_full_fp32_param(param, param.detach().float())
    saved = dict(optimizer_state.get("state", {}))
    if not saved:
        return
    if not any(isinstance(key, str) for key in saved):  # numbered: the order of the trainable parameters
        names = [name for name, _ in named]
        saved = {names[int(i)]: value for i, value in saved.items()}
    # The optimiser creates its state in its first step, and DeepSpeed links each parameter to
    # its piece of that state only then; a resumed run needs the state before: create it as
    # the first step would (zeros, step 0), and link it.
    keys = sorted({key for entry in saved.values() for key in entry if key != "step"})
    for group in optimizer.param_groups:
        for flat in group["params"]:
            if not optimizer.state[flat]:
                optimizer.state[flat] = {"step": torch.tensor(0.0), **{k: torch.zeros_like(flat) for k in keys}}
    engine.optimizer._lazy_init_hp_params_optimizer_state()
    step = None
    for name, param in named:
        entry = saved.get(name)
        if entry is None:
            continue
        for key, value in entry.items():
            if key == "step":
                step = value
            else:
                safe_set_full_optimizer_state(param, value.to(param.device, torch.float32), key)
    if step is not None:
        for group in optimizer.param_groups:
            for flat in group["params"]:
                if "step" in optimizer.state[flat]:
                    current = optimizer.state[flat]["step"]
                    optimizer.state[flat]["step"] = (
                        torch.as_tensor(step, dtype=current.dtype).to(current.device)
                        if isinstance(current, torch.Tensor)
                        else float(step)
                    )
    saved_hyper = optimizer_state.get("param_groups", [{}])[0]
    for group in optimizer.param_groups:  # the learning rate is the schedule's; the rest as saved
        for key, value in saved_hyper.items():
            if key not in ("params", "lr") and key in group:
                group[key] = value
