"""Memory per process for full fine-tuning with GRPO, for Qwen2-shaped 0.5B, 1.5B and 7B models,
under each way of running: one device, data-parallel, FSDP full shard (with and without the
reference network offloaded to CPU memory), FSDP with everything offloaded, and DeepSpeed ZeRO-2
(with and without its optimiser offloaded). ``--algo ppo`` adds PPO's separate critic (a copy of
the transformer without its vocabulary projection, plus a value head), trained and sharded like the
policy under FSDP (DeepSpeed runs GRPO only, so the PPO table has no ZeRO rows).

What is COMPUTED and what is MEASURED:

- COMPUTED (the table for 0.5B-7B): the parameter count ``P`` is exact, from the model built on
  torch's ``meta`` device out of a ``transformers.Qwen2Config`` with the released models' shapes
  (no download, no memory). Bytes follow from ``P`` and the precision: weights, gradients and
  AdamW's two moments of the trained network, plus the reference network of the KL penalty
  (``beta > 0``). Activations and the KV cache are left out: they scale with
  ``groups x G x sequence length``, and gradient checkpointing trades them for time.
- MEASURED (the check of that accounting): a small Qwen2 built from a config on the CPU trains
  one GRPO update with grpo-gym's own code, in one process and in two FSDP processes; the bytes
  of the tensors it then holds (weights, gradients, optimiser state, reference; each process's
  shards under FSDP) are summed and set against the same formula.

DeepSpeed ZeRO-2 (``grpo_agent.common.deepspeed_support``) keeps the weights and the reference
whole in every process and 1/W of the gradients; its optimiser holds fp32 master weights and fp32
AdamW moments whatever the weights' dtype (12 bytes per parameter, 1/W of them per process), and
at the step it copies this process's gradient partition to fp32 (4 bytes per parameter / W,
transient). Its communication buckets (``reduce_bucket_size``, 5e8 elements by default) are left
out. The measurement checks the weights, reference, master weights and moments of two ZeRO-2
processes when DeepSpeed is installed; its gradient partitions live in DeepSpeed's own buffers
and are not measured.

Two transient terms are computed too: during sampling a sharded network is gathered whole in
every process (``grpo_agent.policies.sharding.gathered``), so FSDP's peak adds one full copy of
the weights; data-parallel training adds one flat gradient copy during the all-reduce
(``grpo_agent.common.distributed.average_gradients``).

Run::

    .venv/bin/python benchmarks/memory_table.py                  # 8 processes, bf16 + fp32 AdamW
    .venv/bin/python benchmarks/memory_table.py --processes 2 --precision fp32
    .venv/bin/python benchmarks/memory_table.py --algo ppo --no-measure   # results/memory_table_ppo.*
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import socket
import sys
import tempfile
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

#: The released Qwen2.5 base models' shapes (their config.json files), built locally.
QWEN2_SHAPES: dict[str, dict[str, Any]] = {
    "0.5B": {
        "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
        "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
    },
    "1.5B": {
        "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
        "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
    },
    "7B": {
        "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False,
    },
}  # fmt: skip

#: What DeepSpeed's ZeRO optimiser keeps per parameter whatever the weights' dtype: fp32 master
#: weights and AdamW's two fp32 moments.
ZERO_OPTIMIZER_BYTES = 4 + 4 + 4
#: The fp32 copy of a process's gradient partition that ZeRO steps on.
ZERO_FP32_GRAD_BYTES = 4

#: The small model whose memory is measured (its vocabulary is the tiny policy's tokenizer's).
SMALL_SHAPE: dict[str, Any] = {
    "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "tie_word_embeddings": False,
}  # fmt: skip

GB = 1e9


@dataclasses.dataclass(frozen=True)
class Precision:
    """Bytes per parameter of each model state."""

    name: str
    weights: int
    grads: int
    optimizer: int  # AdamW's exp_avg and exp_avg_sq together
    reference: int

    @property
    def trained(self) -> int:
        return self.weights + self.grads + self.optimizer


PRECISIONS = {
    # the usual recipe on GPUs, and the table's default
    "bf16-fp32adam": Precision("bf16 weights and gradients, fp32 AdamW moments", 2, 2, 8, 2),
    # grpo-gym with dtype="bfloat16": torch's AdamW keeps its moments in the parameters' dtype
    "bf16": Precision("bf16 weights, gradients and AdamW moments (grpo-gym's dtype=bfloat16)", 2, 2, 4, 2),
    # grpo-gym with dtype="float32" (the CPU default)
    "fp32": Precision("fp32 weights, gradients and AdamW moments (grpo-gym's dtype=float32)", 4, 4, 8, 4),
}


def qwen2_config(shape: dict[str, Any], vocab_size: int | None = None) -> Any:
    from transformers import Qwen2Config

    fields = dict(shape)
    if vocab_size is not None:
        fields["vocab_size"] = vocab_size
    return Qwen2Config(**fields)


def parameter_counts(config: Any) -> tuple[int, int, int]:
    """``(all parameters, the largest FSDP unit's, PPO's separate critic's)`` of a Qwen2 model with
    ``config``, built on the meta device. The units are the decoder layers and the root
    (embeddings, final norm, head); the critic is the transformer under the head
    (``grpo_agent.ppo.critic``: embeddings, layers, final norm) plus a value head of H + 1."""
    import torch
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())  # tied embeddings are counted once
    layer = sum(p.numel() for p in model.model.layers[0].parameters())
    critic = sum(p.numel() for p in model.model.parameters()) + config.hidden_size + 1
    return total, max(layer, total - layer * config.num_hidden_layers), critic


def per_process(params: int, unit: int, precision: Precision, processes: int, critic: int = 0) -> list[dict[str, Any]]:
    """Bytes each process holds under each option: persistent on the device, the transient peak
    added on top, and CPU memory (offloaded states).

    :param critic: PPO's critic parameters, trained (weights, gradients, AdamW) and sharded like
        the policy's; sampling gathers the policy alone, and the critic's forward, once per
        rollout, gathers one unit at a time, so the transient terms do not grow but for the
        data-parallel gradient copy.
    """
    p, w = params, processes
    trained, ref = (p + critic) * precision.trained, p * precision.reference
    whole_weights = p * precision.weights
    gathered_units = 2 * unit * precision.weights  # the running unit and the prefetched next one
    options = [
        {"option": "one device", "device": trained + ref, "transient": 0, "cpu": 0},
        {
            "option": f"data-parallel x{w}",
            "device": trained + ref,
            "transient": (p + critic) * precision.grads,
            "cpu": 0,
        },
        {"option": f"FSDP x{w}", "device": (trained + ref) / w, "transient": whole_weights, "cpu": 0},
        {
            "option": f"FSDP x{w}, reference offloaded",
            "device": trained / w,
            "transient": whole_weights,
            "cpu": ref / w,
        },
        {
            "option": f"FSDP x{w}, all offloaded",
            "device": 0,
            "transient": max(whole_weights, gathered_units),
            "cpu": (trained + ref) / w,
        },
    ]
    if critic:  # DeepSpeed runs GRPO only
        return options
    return [
        *options,
        {
            "option": f"DeepSpeed ZeRO-2 x{w}",
            "device": whole_weights + ref + p * (precision.grads + ZERO_OPTIMIZER_BYTES) / w,
            "transient": p * ZERO_FP32_GRAD_BYTES / w,
            "cpu": 0,
        },
        {
            "option": f"DeepSpeed ZeRO-2 x{w}, optimizer offloaded",
            "device": whole_weights + ref + p * precision.grads / w,
            "transient": 0,
            "cpu": p * (ZERO_OPTIMIZER_BYTES + ZERO_FP32_GRAD_BYTES) / w,
        },
    ]


def computed_rows(precision: Precision, processes: int, device_gb: float, algo: str = "grpo") -> list[dict[str, Any]]:
    rows = []
    for name, shape in QWEN2_SHAPES.items():
        params, unit, critic = parameter_counts(qwen2_config(shape))
        for option in per_process(params, unit, precision, processes, critic if algo == "ppo" else 0):
            peak = (option["device"] + option["transient"]) / GB
            rows.append(
                {
                    "model": name,
                    "params": params,
                    "option": option["option"],
                    "device_gb": option["device"] / GB,
                    "transient_gb": option["transient"] / GB,
                    "peak_gb": peak,
                    "cpu_gb": option["cpu"] / GB,
                    "fits": peak <= device_gb,
                }
            )
    return rows


# -- the measurement ---------------------------------------------------------------------------


def _tensor_bytes(tensors: Any) -> int:
    from torch.distributed.tensor import DTensor

    total = 0
    for t in tensors:
        local = t.to_local() if isinstance(t, DTensor) else t
        total += local.numel() * local.element_size()
    return total


def _reference_bytes(policy: Any) -> int:
    with policy.reference_model() as reference:
        return _tensor_bytes(reference.parameters())


def measure_states(dtype: str, fsdp: bool, deepspeed: bool = False) -> dict[str, int]:
    """One GRPO update of the small Qwen2 with grpo-gym's code, then the bytes this process holds
    (under DeepSpeed ZeRO-2: the optimiser's fp32 master weights too, and no gradients)."""
    import gymnasium as gym
    import torch
    from transformers import Qwen2ForCausalLM

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_agent import GRPO
    from grpo_agent.common.deepspeed_support import ZeroPlan
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.policies.sharding import ShardingPlan
    from grpo_agent.policies.tiny import build_char_tokenizer

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    net = Qwen2ForCausalLM(qwen2_config(SMALL_SHAPE, vocab_size=len(tok)))
    env = gym.make("grpo/Math-v0", levels=1)
    policy = CausalLMPolicy.from_pretrained(net, env, tokenizer=tok, dtype=dtype, max_new_tokens=4)
    model = GRPO(
        policy, env, group_size=2, n_groups=2, beta=0.04, learning_rate=1e-3, seed=0, device="cpu",
        fsdp=ShardingPlan() if fsdp else None, deepspeed=ZeroPlan(stage=2) if deepspeed else None,
    )  # fmt: skip
    model.learn(total_timesteps=1)
    params = [p for p in policy.model.parameters()]
    states = [v for s in model.optimizer.state.values() for k, v in s.items() if k in ("exp_avg", "exp_avg_sq")]
    if deepspeed:  # the optimiser steps fp32 partitions: its master weights and their moments
        return {
            "params": sum(p.numel() for p in params),
            "weights": _tensor_bytes(params),
            "master": _tensor_bytes(model._deepspeed_engine.optimizer.single_partition_of_fp32_groups),
            "optimizer": _tensor_bytes(states),
            "reference": _reference_bytes(policy),
        }
    return {
        "params": sum(p.numel() for p in params),  # the global count (a DTensor's numel is its full size)
        "weights": _tensor_bytes(params),
        "grads": _tensor_bytes([p.grad for p in params if p.grad is not None]),
        "optimizer": _tensor_bytes(states),
        "reference": _reference_bytes(policy),
    }


def _measure_rank(rank: int, port: int, dtype: str, out: str, deepspeed: bool) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        measured = measure_states(dtype, fsdp=not deepspeed, deepspeed=deepspeed)
        everyone: list[Any] = [None, None]
        dist.all_gather_object(everyone, measured)
        if rank == 0:
            torch.save(everyone, out)
    finally:
        dist.destroy_process_group()


def _two_processes(dtype: str, deepspeed: bool) -> list[dict[str, int]]:
    import torch
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "measured.pt")
        mp.spawn(_measure_rank, args=(port, dtype, out, deepspeed), nprocs=2, join=True)
        return list(torch.load(out))


def measured_rows() -> list[dict[str, Any]]:
    """The small model's bytes per state, measured, against the formula, for fp32 and bf16, in one
    process, in each of two FSDP processes and (DeepSpeed installed) of two ZeRO-2 processes."""
    import importlib.util

    from grpo_agent.common.deepspeed_support import select_accelerator

    select_accelerator()
    with_deepspeed = importlib.util.find_spec("deepspeed") is not None
    rows = []
    for dtype, precision in (("float32", PRECISIONS["fp32"]), ("bfloat16", PRECISIONS["bf16"])):
        runs = {"one process": [measure_states(dtype, fsdp=False)]}
        runs["FSDP x2, each process"] = _two_processes(dtype, deepspeed=False)
        if with_deepspeed:
            runs["DeepSpeed ZeRO-2 x2, each process"] = _two_processes(dtype, deepspeed=True)
        for setting, measured in runs.items():
            processes = 1 if setting == "one process" else 2
            for rank, m in enumerate(measured):
                expected = {
                    "weights": m["params"] * precision.weights / processes,
                    "grads": m["params"] * precision.grads / processes,
                    "optimizer": m["params"] * precision.optimizer / processes,
                    "reference": m["params"] * precision.reference / processes,
                }
                if "master" in m:  # ZeRO-2: whole weights and reference, fp32 optimiser partitions
                    expected = {
                        "weights": m["params"] * precision.weights,
                        "master": m["params"] * 4 / processes,
                        "optimizer": m["params"] * 8 / processes,
                        "reference": m["params"] * precision.reference,
                    }
                for state, value in expected.items():
                    rows.append(
                        {
                            "dtype": dtype,
                            "setting": setting if processes == 1 else f"{setting} (rank {rank})",
                            "state": state,
                            "params": m["params"],
                            "measured_bytes": m[state],
                            "computed_bytes": value,
                            "ratio": m[state] / value,
                        }
                    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8, help="processes (GPUs) for the data-parallel and FSDP rows")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="bf16-fp32adam")
    parser.add_argument("--device-gb", type=float, default=80.0, help="device memory to compare against")
    parser.add_argument(
        "--algo", choices=["grpo", "ppo"], default="grpo", help="ppo: with the separate critic (computed only)"
    )
    parser.add_argument("--no-measure", action="store_true", help="skip the measurement on the small model")
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    if args.processes < 2:
        parser.error("--processes must be >= 2 (the one-device row is always there)")

    precision = PRECISIONS[args.precision]
    rows = computed_rows(precision, args.processes, args.device_gb, args.algo)
    ppo = args.algo == "ppo"
    stem = "memory_table_ppo" if ppo else "memory_table"  # the GRPO table stays as it is
    fits = f"fits {args.device_gb:.0f} GB"
    table = _report.markdown_table(
        ["model", "parameters", "option", "on the device", "+ transient", "peak", "CPU memory", fits],
        [
            [
                r["model"], f"{r['params'] / 1e9:.2f}B", r["option"], f"{r['device_gb']:.1f} GB",
                f"{r['transient_gb']:.1f} GB", f"{r['peak_gb']:.1f} GB", f"{r['cpu_gb']:.1f} GB",
                "yes" if r["fits"] else "no",
            ]
            for r in rows
        ],
    )  # fmt: skip
    what = "PPO (separate critic)" if ppo else "GRPO"
    text = (
        f"# Memory per process, {what} full fine-tuning with a reference network (COMPUTED)\n\n"
        f"{precision.name}: {precision.trained} bytes per trained parameter, {precision.reference} per reference "
        f"parameter. Model states only (no activations, no KV cache); '+ transient' is the whole gathered "
        + (
            "weights while sampling (FSDP) or the flat gradient copy of the all-reduce (data-parallel)."
            if ppo
            else "weights while sampling (FSDP), the flat gradient copy of the all-reduce (data-parallel), or the "
            "fp32 copy of the gradient partition at the step (DeepSpeed, whose optimiser keeps fp32 master weights "
            f"and moments: {ZERO_OPTIMIZER_BYTES} bytes per parameter, sharded, whatever the dtype)."
        )
        + f"\n\n{table}\n"
    )
    if ppo:
        text += (
            "\nThe critic (the transformer without its vocabulary projection, plus a value head) is trained and "
            "sharded like the policy; it has no reference copy.\n"
        )
    _report.write_csv(args.out_dir / f"{stem}.csv", rows)
    if not args.no_measure and not ppo:  # the measurement checks the formula both algorithms share
        measured = measured_rows()
        check = _report.markdown_table(
            ["dtype", "setting", "state", "measured bytes", "computed bytes", "measured / computed"],
            [
                [
                    r["dtype"], r["setting"], r["state"], f"{r['measured_bytes']:,}", f"{r['computed_bytes']:,.0f}",
                    f"{r['ratio']:.4f}",
                ]
                for r in measured
            ],
        )  # fmt: skip
        params = measured[0]["params"]
        text += (
            f"\n## The accounting checked on a small Qwen2 ({params:,} parameters, built from a config) (MEASURED)\n\n"
            "Bytes of the tensors grpo-gym holds after one GRPO update (beta=0.04), against the formula above "
            "with the same dtype. Under DeepSpeed ZeRO-2 the optimiser's master weights and moments are fp32 in "
            "either dtype (4 and 8 bytes per parameter, halved over the two processes), and the gradient "
            f"partitions, in DeepSpeed's own buffers, are not measured.\n\n{check}\n"
        )
        _report.write_csv(args.out_dir / "memory_table_measured.csv", measured)
    print(text)
    _report.write_markdown(args.out_dir / f"{stem}.md", text, _report.machine_description())
    return 0


if __name__ == "__main__":
    sys.exit(main())
