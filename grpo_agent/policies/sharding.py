"""Fully sharded data parallelism (FSDP2, ``torch.distributed.fsdp.fully_shard``) for a policy's networks.

Under plain data parallelism every process holds the whole model, its gradients and AdamW's two
moments: 16 bytes per parameter in fp32, 112 GB for a 7B model before a single activation. FSDP
keeps 1/W of each on each of the W processes; a layer's full weights exist only while it runs
(all-gathered before its forward and backward, freed after), and gradients are reduce-scattered,
averaged over the processes, so every process steps its own shard as one process would step the
whole. The reference network of the KL penalty is sharded the same way, or kept in CPU memory
(``offload_reference``) and brought to the device one layer at a time.

Two places need the whole network at once, and get it for the time they run:

- sampling (:func:`gathered`): a decoding loop calls the network once per token, and the
  processes' loops end at different steps (their completions have different lengths), so the
  weights are all-gathered once before the loop and freed after it, as TRL does for DeepSpeed
  ZeRO-3, instead of once per step in lock-step;
- checkpoints (:func:`full_state_dict`, :func:`load_full_state_dict`): every process takes
  part in gathering the full tensors, and rank 0 receives them.

A :class:`ShardingPlan` comes from the caller (``GRPO(..., fsdp=ShardingPlan())``) or from an
accelerate config file through ``accelerate launch`` (:meth:`ShardingPlan.from_accelerate_environment`,
the files in ``configs/accelerate/``). Outside a process group of several processes nothing here
shards anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, OffloadPolicy, fully_shard

#: Full tensors, gathered on rank 0 and kept in CPU memory (the other ranks get empty dicts), so a
#: checkpoint never needs a second full copy on the device.
_GATHER_TO_RANK0 = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass(frozen=True)
class ShardingPlan:
    """How a policy's networks are sharded over the processes of the default process group.

    :param reshard_after_forward: free each layer's gathered weights after its forward (ZeRO-3:
        least memory, one more all-gather per layer in the backward); False keeps them until the
        backward is done (ZeRO-2's memory for parameters, less communication).
    :param offload_params: keep the trained network's shards, gradients and optimiser states in
        CPU memory (FSDP2's ``CPUOffloadPolicy``): the device holds one layer at a time.
    :param offload_reference: keep the reference network's shards in CPU memory (it is only read
        once per rollout, so this costs little time).
    :param layer_classes: class names of the blocks sharded one by one (None: the model's own
        ``_no_split_modules``, e.g. ``Qwen2DecoderLayer``); the rest (embeddings, final norm,
        head) is one more unit.
    """

    reshard_after_forward: bool = True
    offload_params: bool = False
    offload_reference: bool = False
    layer_classes: tuple[str, ...] | None = None

    @classmethod
    def from_accelerate_environment(cls) -> ShardingPlan | None:
        """The plan an accelerate config file asked for, or None when it asked for no FSDP.

        ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` passes the file's
        ``fsdp_config`` to every process in ``FSDP_*`` environment variables; accelerate's own
        :class:`~accelerate.utils.FullyShardedDataParallelPlugin` reads them, so the keys mean
        what they mean for any accelerate script. ``GRPO_GYM_OFFLOAD_REFERENCE=1`` (no accelerate
        key exists for it) offloads the reference network alone.
        """
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() not in ("1", "true"):
            return None
        from accelerate.utils import FullyShardedDataParallelPlugin

        plugin = FullyShardedDataParallelPlugin()
        if plugin.fsdp_version != 2:
            raise ValueError(
                f"the accelerate config asks for FSDP version {plugin.fsdp_version}; grpo-gym shards with FSDP2: "
                "set fsdp_version: 2 in its fsdp_config (as configs/accelerate/fsdp.yaml does)"
            )
        offload = isinstance(plugin.cpu_offload, CPUOffloadPolicy)
        layers = plugin.transformer_cls_names_to_wrap
        return cls(
            reshard_after_forward=bool(plugin.reshard_after_forward),
            offload_params=offload,
            offload_reference=offload or os.environ.get("GRPO_GYM_OFFLOAD_REFERENCE", "0") == "1",
            layer_classes=tuple(layers) if layers else None,
        )


def is_sharded(module: torch.nn.Module) -> bool:
    """Whether ``module`` (or a module inside it) is sharded by FSDP2."""
    return any(isinstance(m, FSDPModule) for m in module.modules())


def shard_network(network: torch.nn.Module, plan: ShardingPlan, *, offload: bool) -> None:
    """Shard ``network`` in place: each block of ``plan.layer_classes`` is one FSDP unit, and the
    root holds the rest. Its parameters become ``DTensor`` shards, so an optimiser must be built
    over them afterwards.

    :param offload: keep the shards in CPU memory (a network on the CPU is there already).
    """
    names = set(plan.layer_classes or getattr(network, "_no_split_modules", None) or ())
    options = _unit_options(network, plan, offload)
    blocks = [m for m in network.modules() if m is not network and type(m).__name__ in names]
    if names and not blocks:
        raise ValueError(
            f"no module of {type(network).__name__} is one of the layer classes {sorted(names)}; "
            "name the model's decoder-layer class in fsdp_transformer_layer_cls_to_wrap"
        )
    for block in blocks:
        fully_shard(block, **options)
    fully_shard(network, **options)


def shard_whole(module: torch.nn.Module, plan: ShardingPlan, *, offload: bool) -> None:
    """Shard ``module`` as one FSDP unit whatever ``plan.layer_classes`` say (PPO's value head:
    one row of weights, nothing to split into layers)."""
    fully_shard(module, **_unit_options(module, plan, offload))


def _unit_options(network: torch.nn.Module, plan: ShardingPlan, offload: bool) -> dict[str, Any]:
    on_cpu = all(p.device.type == "cpu" for p in network.parameters())
    return {
        "reshard_after_forward": plan.reshard_after_forward,
        # A network on the CPU has its shards in CPU memory already (and FSDP2's offload pins
        # memory, which needs an accelerator).
        "offload_policy": CPUOffloadPolicy() if offload and not on_cpu else OffloadPolicy(),
    }


def _units(network: torch.nn.Module) -> list[FSDPModule]:
    return [m for m in network.modules() if isinstance(m, FSDPModule)]


@contextmanager
def gathered(network: torch.nn.Module, plan: ShardingPlan) -> Iterator[None]:
    """The whole of ``network``, sharded by ``plan``, in every process while the block runs (an
    all-gather on entry, which every process must reach), with no collective inside it, so each
    process may call the network as often as it likes; the shards are back on exit. Nothing
    happens for a network that is not sharded."""
    units = _units(network)
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)  # stay whole between the loop's calls
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(plan.reshard_after_forward, recurse=False)


def full_state_dict(network: torch.nn.Module) -> dict[str, Any]:
    """``network.state_dict()`` with full tensors, in CPU memory, on rank 0 ({} on the others);
    every process must call it."""
    return get_model_state_dict(network, options=_GATHER_TO_RANK0)


def load_full_state_dict(network: torch.nn.Module, state: dict[str, Any]) -> None:
    """Load a full state dict (e.g. from :func:`full_state_dict`) into a sharded ``network``; every
    process must call it with the same ``state``."""
    set_model_state_dict(network, state, options=StateDictOptions(full_state_dict=True))


def full_optimizer_state_dict(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimiser's state with full tensors on rank 0 (keyed by parameter name); every process
    must call it."""
    return get_optimizer_state_dict(network, optimizer, options=_GATHER_TO_RANK0)


def load_full_optimizer_state_dict(
    network: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Load what :func:`full_optimizer_state_dict` returned into the optimiser of a sharded network."""
    set_optimizer_state_dict(network, optimizer, state, options=StateDictOptions(full_state_dict=True))
