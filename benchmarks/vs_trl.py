"""Throughput of our GRPO against TRL's ``GRPOTrainer``: the same model, tasks, reward and settings.

Both trainers start from the same warm-started tiny model (``grpo_agent.policies.tiny``, saved
to a local folder and loaded by path), train on the same ``grpo/Math-v0`` training tasks, score
completions with the same verifier (:func:`grpo_envs.verify.math.verify_math_answer`: ours
through the env, TRL's through a reward function reading the reference from a dataset
column), and use the same settings, named explicitly on both sides because the defaults
differ (TRL 1.16 defaults to ``loss_type="dapo"``, ``beta=0`` and a linear learning-rate
decay): group size (TRL ``num_generations``), prompts per update, completion length (TRL
``max_completion_length``), temperature, top-p, learning rate (constant), ``beta``, loss
type, clipping, one gradient step per rollout, and the number of updates.

Run::

    .venv/bin/python benchmarks/vs_trl.py                    # 50 updates each, 2 runs each
    .venv/bin/python benchmarks/vs_trl.py --updates 10 --repeats 1 --device cuda

TRL is an optional benchmark dependency (``pip install trl``, the ``bench`` extra); without
it only our side runs. Every run gets its own Python process (see ``_isolate.py``), so the
peak memory of one does not leak into the other; repeats alternate ours / TRL so that a
change in machine load hits both. Per update, both sides record:

- ``generate_s``: sampling the completions (ours ``policy.sample``; TRL ``_generate``), both
  including prompt tokenisation and decoding;
- ``reward_s``: scoring the completions;
- ``step_s``: the whole update, from drawing prompts to the optimizer step; the *update time*
  reported is ``step_s - generate_s - reward_s`` (reference log-probs, loss, backward, step).

Writes ``vs_trl.csv`` (one row per update and run), ``vs_trl.md`` (the table) and
``vs_trl.png`` (reward per update) under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _isolate
import _report

#: Updates whose reward is averaged to compare where the two runs end up.
FINAL_WINDOW = 5

#: Updates left out of the timings: the first one pays one-off costs (allocator warm-up, the
#: reference model's first use, lazy imports), measured at 2-10x a later update.
WARMUP_UPDATES = 1

#: torch threads per run. On the shared 2-core machine these numbers come from, 2 threads per
#: process made an update ~10x slower than 1 thread whenever other jobs ran (OpenMP threads
#: spin-waiting on each other); on a dedicated machine pass ``--threads`` = its core count.
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class Settings:
    """One comparison: everything both trainers are given. Defaults are ``grpo train``'s.

    :param env_id: the env whose tasks and verifier are used (a math env).
    :param levels: Math-v0 levels of the generated tasks (1: one operation on small integers).
    :param num_tasks: size of the training task pool both trainers draw prompts from.
    :param group_size: completions per prompt (TRL ``num_generations``).
    :param n_groups: prompts per update; an update trains on ``n_groups * group_size`` completions.
    :param max_new_tokens: longest completion (TRL ``max_completion_length``).
    :param temperature: sampling temperature.
    :param learning_rate: constant AdamW learning rate.
    :param beta: KL coefficient (> 0 makes both keep and evaluate a frozen reference model).
    :param loss_type: loss aggregation, one of TRL's names.
    :param updates: optimizer steps per run (TRL ``max_steps``).
    :param seed: seed of the warm start, sampling and prompt order.
    :param sft_steps: supervised warm-start steps of the tiny model (None: the built-in budget).
    :param threads: torch CPU threads in each run.
    :param device: ``"cpu"`` or ``"cuda"``.
    :param share_prefix: our policy computes each prompt once per group (its default); False
        measures ours without it, the way TRL computes (one row per completion).
    """

    env_id: str = "grpo/Math-v0"
    levels: int = 1
    num_tasks: int = 1000
    group_size: int = 8
    n_groups: int = 8
    max_new_tokens: int = 16
    temperature: float = 1.0
    learning_rate: float = 5e-4
    beta: float = 0.04
    loss_type: str = "grpo"
    updates: int = 50
    seed: int = 0
    sft_steps: int | None = None
    threads: int = DEFAULT_THREADS
    device: str = "cpu"
    share_prefix: bool = True

    @property
    def completions_per_update(self) -> int:
        """Completions sampled and trained on in one update."""
        return self.group_size * self.n_groups


def trl_available() -> bool:
    """Whether TRL can be imported (it is an optional benchmark dependency)."""
    return importlib.util.find_spec("trl") is not None


def make_env(settings: Settings) -> Any:
    """The training env whose tasks both trainers use."""
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids

    return gym.make(settings.env_id, levels=settings.levels, num_tasks=settings.num_tasks, split="train")


def prepare_model(settings: Settings, cache_dir: str | None = None) -> str:
    """Warm-start the tiny model on the env's tasks (cached) and return its folder."""
    from grpo_agent.policies.tiny import SFTConfig, warm_start_tiny

    _setup_torch(settings)
    sft = (
        SFTConfig(seed=settings.seed)
        if settings.sft_steps is None
        else SFTConfig(steps=settings.sft_steps, seed=settings.seed)
    )
    return str(warm_start_tiny(make_env(settings), sft_config=sft, cache_dir=cache_dir))


def _setup_torch(settings: Settings) -> None:
    import torch

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)


# -- our side -------------------------------------------------------------------------------------


def run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with ``grpo_agent.GRPO`` from the model folder; per-update timings and rewards."""
    settings = Settings(**spec["settings"])
    _setup_torch(settings)
    started = time.perf_counter()
    from grpo_agent import GRPO
    from grpo_agent.policies.causal_lm import CausalLMPolicy

    env = make_env(settings)
    policy = CausalLMPolicy(
        env.observation_space,
        env.action_space,
        spec["model_path"],
        device=settings.device,
        dtype="float32",
        temperature=settings.temperature,
        top_p=1.0,
        max_new_tokens=settings.max_new_tokens,
        reference="copy" if settings.beta > 0 else "none",
        share_prefix=settings.share_prefix,
    )
    model = GRPO(
        policy,
        env,
        learning_rate=settings.learning_rate,
        group_size=settings.group_size,
        n_groups=settings.n_groups,
        beta=settings.beta,
        loss_type=settings.loss_type,
        clip_range=0.2,
        scale_rewards="group",
        n_epochs=1,
        max_grad_norm=1.0,
        lr_scheduler_type="constant",
        seed=settings.seed,
        device=settings.device,
    )
    setup_s = time.perf_counter() - started

    generate: list[tuple[float, float]] = []
    sample = policy.sample

    def timed_sample(*args: Any, **kwargs: Any) -> Any:
        t0 = _clock()
        out = sample(*args, **kwargs)
        generate.append(_since(t0))
        return out

    policy.sample = timed_sample  # type: ignore[method-assign]
    steps: list[dict[str, Any]] = []
    collect, train = model.collect_rollouts, model.train

    # Scoring is env.reset(task) + env.step(completion) per completion; the few resets that draw
    # the prompts are counted too (microseconds, and against us).
    rewards: list[tuple[float, float]] = []

    def timed_env(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = _clock()
            out = fn(*args, **kwargs)
            rewards.append(_since(t0))
            return out

        return wrapper

    env.reset, env.step = timed_env(env.reset), timed_env(env.step)  # type: ignore[method-assign]

    def timed_collect(env: Any, callback: Any) -> bool:
        t0 = _clock()
        generate.clear()
        rewards.clear()
        ok = collect(env, callback)
        values = model.logger.name_to_value
        wall, cpu = _since(t0)
        steps.append(
            {
                "collect_s": wall,
                "collect_cpu_s": cpu,
                "generate_s": sum(w for w, _ in generate),
                "generate_cpu_s": sum(c for _, c in generate),
                "reward_s": sum(w for w, _ in rewards),
                "reward_cpu_s": sum(c for _, c in rewards),
                "reward": float(values["rollout/reward_mean"]),
                "completion_length": float(values["rollout/completion_length"]),
            }
        )
        return ok

    def timed_train() -> None:
        t0 = _clock()
        train()
        _sync(settings)
        steps[-1]["train_s"], steps[-1]["train_cpu_s"] = _since(t0)

    model.collect_rollouts, model.train = timed_collect, timed_train  # type: ignore[method-assign]
    t0 = time.perf_counter()
    model.learn(settings.updates * settings.completions_per_update, log_interval=0)
    total_s = time.perf_counter() - t0
    for s in steps:
        s["step_s"] = s.pop("collect_s") + s.pop("train_s")
        s["step_cpu_s"] = s.pop("collect_cpu_s") + s.pop("train_cpu_s")
    return {"kind": "ours", "setup_s": setup_s, "train_total_s": total_s, "steps": steps}


def _clock() -> tuple[float, float]:
    """Wall-clock and CPU time of this process (all its threads) now."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall-clock and CPU seconds elapsed since ``start`` (from :func:`_clock`)."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def _sync(settings: Settings) -> None:
    """Wait for queued GPU work, so that a timer stops after the work, not after its launch."""
    if settings.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# -- TRL's side -----------------------------------------------------------------------------------


def math_reward_function(completions: list[Any], reference: list[str], **kwargs: Any) -> list[float]:
    """The Math-v0 reward as a TRL reward function: each completion is checked by the same
    verifier as the env's, against the task's reference from the dataset's ``reference`` column.

    :param completions: TRL passes, for conversational prompts, one message list per completion.
    :param reference: the ``reference`` column of the prompts' rows.
    """
    from grpo_envs.verify.math import verify_math_answer

    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [verify_math_answer(text, ref).reward for text, ref in zip(texts, reference)]


def trl_dataset(settings: Settings) -> Any:
    """The env's training tasks as a TRL dataset: a conversational ``prompt`` and the ``reference``."""
    from datasets import Dataset

    tasks = make_env(settings).unwrapped.tasks
    rows = [
        {"prompt": [{"role": "user", "content": tasks[i].prompt}], "reference": str(tasks[i].reference)}
        for i in range(len(tasks))
    ]
    return Dataset.from_list(rows)


def trl_config(settings: Settings, output_dir: str) -> Any:
    """A ``GRPOConfig`` with every setting that matters spelled out (TRL's defaults differ from ours)."""
    from trl import GRPOConfig

    # TRL's GRPOConfig turns gradient checkpointing on by default; ours is off, and recomputing
    # activations would slow TRL's update for no reason on a model this small. Recent
    # transformers renamed the argument (and warn on the old name).
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return GRPOConfig(
        **{checkpointing: False},
        output_dir=output_dir,
        per_device_train_batch_size=settings.completions_per_update,  # one rollout = one optimizer step
        gradient_accumulation_steps=1,
        num_generations=settings.group_size,
        num_iterations=1,
        max_completion_length=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=settings.beta,
        loss_type=settings.loss_type,
        epsilon=0.2,
        scale_rewards="group",
        max_steps=settings.updates,
        seed=settings.seed,
        use_cpu=not settings.device.startswith("cuda"),
        bf16=False,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_completions=False,
    )


def run_trl(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with TRL's ``GRPOTrainer`` from the model folder; per-update timings and rewards."""
    settings = Settings(**spec["settings"])
    _setup_torch(settings)
    started = time.perf_counter()
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    rewards: list[float] = []
    lengths: list[float] = []

    def reward(
        completions: list[Any], reference: list[str], completion_ids: list[list[int]], **kwargs: Any
    ) -> list[float]:
        values = math_reward_function(completions, reference)
        rewards.append(sum(values) / len(values))
        lengths.append(sum(len(c) for c in completion_ids) / len(completion_ids))
        return values

    reward.__name__ = "math_reward"
    out_dir = tempfile.mkdtemp(prefix="grpo-bench-trl-")  # TRL wants one; nothing is saved in it
    model = AutoModelForCausalLM.from_pretrained(spec["model_path"], dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=trl_config(settings, out_dir),
        train_dataset=trl_dataset(settings),
        processing_class=tokenizer,
    )
    setup_s = time.perf_counter() - started

    steps: list[dict[str, Any]] = []
    timers = dict.fromkeys(("generate_s", "generate_cpu_s", "reward_s", "reward_cpu_s"), 0.0)

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = _clock()
            out = fn(*args, **kwargs)
            _sync(settings)
            wall, cpu = _since(t0)
            timers[f"{name}_s"] += wall
            timers[f"{name}_cpu_s"] += cpu
            return out

        return wrapper

    trainer._generate = timed("generate", trainer._generate)  # type: ignore[method-assign]
    trainer._calculate_rewards = timed("reward", trainer._calculate_rewards)  # type: ignore[method-assign]

    class StepTimer(TrainerCallback):
        """Times each optimizer step (generation, scoring and update included)."""

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            timers.update(dict.fromkeys(timers, 0.0))
            self.t0 = _clock()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _sync(settings)
            wall, cpu = _since(self.t0)
            steps.append({"step_s": wall, "step_cpu_s": cpu, **timers})

    trainer.add_callback(StepTimer())
    t0 = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    total_s = time.perf_counter() - t0
    for s, r, n in zip(steps, rewards, lengths):
        s.update(reward=r, completion_length=n)
    import trl

    return {"kind": "trl", "setup_s": setup_s, "train_total_s": total_s, "steps": steps, "version": trl.__version__}


# -- comparison -----------------------------------------------------------------------------------


@dataclass
class Summary:
    """One run reduced to the numbers of the table. Each time is given twice: wall clock, and
    the CPU time of the run's process (all threads), which a shared machine's load disturbs far
    less (a descheduled process accrues no CPU time)."""

    kind: str
    repeat: int
    updates: int
    generate_per_s: float
    generate_per_cpu_s: float
    update_s: float
    update_cpu_s: float
    completions_per_s: float
    completions_per_cpu_s: float
    first_reward: float
    final_reward: float
    mean_reward: float
    peak_rss_mib: float

    @classmethod
    def of(cls, result: dict[str, Any], repeat: int, settings: Settings) -> Summary:
        """Summarise a worker's result: throughput over the updates after the warm-up ones,
        median update time, mean reward over the first and the last updates."""
        steps = result["steps"]
        window = min(FINAL_WINDOW, len(steps))
        timed = steps[WARMUP_UPDATES:] if len(steps) > WARMUP_UPDATES else steps
        n = settings.completions_per_update * len(timed)

        def total(key: str) -> float:
            return sum(s[key] for s in timed)

        def update(cpu: str) -> float:
            return statistics.median(s[f"step{cpu}_s"] - s[f"generate{cpu}_s"] - s[f"reward{cpu}_s"] for s in timed)

        return cls(
            kind=result["kind"],
            repeat=repeat,
            updates=len(steps),
            generate_per_s=n / total("generate_s"),
            generate_per_cpu_s=n / total("generate_cpu_s"),
            update_s=update(""),
            update_cpu_s=update("_cpu"),
            completions_per_s=n / total("step_s"),
            completions_per_cpu_s=n / total("step_cpu_s"),
            first_reward=statistics.fmean(s["reward"] for s in steps[:window]),
            final_reward=statistics.fmean(s["reward"] for s in steps[-window:]),
            mean_reward=statistics.fmean(s["reward"] for s in steps),
            peak_rss_mib=result["peak_rss_mib"],
        )

    def line(self) -> str:
        """One progress line."""
        return (
            f"{self.kind:>4} run {self.repeat}: generation {self.generate_per_s:6.1f} completions/s "
            f"({self.generate_per_cpu_s:6.1f} per CPU-s), update {self.update_s:.3f} s ({self.update_cpu_s:.3f} "
            f"CPU-s), end to end {self.completions_per_s:5.1f} completions/s ({self.completions_per_cpu_s:5.1f} "
            f"per CPU-s), reward {self.first_reward:.2f} -> {self.final_reward:.2f} (mean {self.mean_reward:.3f}), "
            f"peak RSS {self.peak_rss_mib:.0f} MiB"
        )


def compare(
    settings: Settings,
    repeats: int = 1,
    include_trl: bool | None = None,
    cache_dir: str | None = None,
    timeout: float | None = None,
) -> tuple[list[Summary], list[dict[str, Any]]]:
    """Run ours and (when installed) TRL ``repeats`` times each, alternating, each in its own process.

    :return: one :class:`Summary` per run, and the per-update rows of every run.
    """
    include_trl = trl_available() if include_trl is None else include_trl
    model_path = prepare_model(settings, cache_dir)
    kinds = ["ours", "trl"] if include_trl else ["ours"]
    summaries: list[Summary] = []
    rows: list[dict[str, Any]] = []
    spec = {"settings": dataclasses.asdict(settings), "model_path": model_path}
    for repeat in range(repeats):
        for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
            result = _isolate.run_isolated(__file__, {**spec, "kind": kind}, timeout=timeout)
            summary = Summary.of(result, repeat, settings)
            summaries.append(summary)
            rows += [
                {"trainer": kind, "repeat": repeat, "update": i + 1, **{k: round(v, 5) for k, v in s.items()}}
                for i, s in enumerate(result["steps"])
            ]
            print(summary.line(), flush=True)
    return summaries, rows


def best(summaries: list[Summary], kind: str, key: str = "completions_per_s") -> Summary | None:
    """The run of ``kind`` with the highest ``key`` (machine noise only ever slows a run down)."""
    mine = [s for s in summaries if s.kind == kind]
    return max(mine, key=lambda s: getattr(s, key)) if mine else None


#: Table columns: (header, Summary attribute, format, higher is better).
COLUMNS = [
    ("generation, completions/s", "generate_per_s", ".1f", True),
    ("generation, completions per CPU-s", "generate_per_cpu_s", ".1f", True),
    ("update, s (median)", "update_s", ".3f", False),
    ("update, CPU-s (median)", "update_cpu_s", ".3f", False),
    ("end to end, completions/s", "completions_per_s", ".1f", True),
    ("end to end, completions per CPU-s", "completions_per_cpu_s", ".1f", True),
]


def table(summaries: list[Summary], settings: Settings) -> str:
    """The markdown table: each trainer's best value of every column (over its runs), the
    ratio ours / TRL (> 1: ours is better), rewards and memory of the best end-to-end run."""
    header = [
        "trainer",
        *(c[0] for c in COLUMNS),
        f"reward, first {FINAL_WINDOW} updates",
        f"reward, last {FINAL_WINDOW} updates",
        "reward, mean of all updates",
        "peak RSS MiB",
    ]
    rows = []
    bests: dict[str, dict[str, float]] = {}
    ours_name = "grpo_agent.GRPO" if settings.share_prefix else "grpo_agent.GRPO (share_prefix=False)"
    for kind, name in (("ours", ours_name), ("trl", "TRL GRPOTrainer")):
        mine = [s for s in summaries if s.kind == kind]
        if not mine:
            continue
        values = {attr: (max if higher else min)(getattr(s, attr) for s in mine) for _, attr, _, higher in COLUMNS}
        bests[kind] = values
        top = best(summaries, kind)
        assert top is not None
        rows.append(
            [
                name,
                *(format(values[attr], spec) for _, attr, spec, _ in COLUMNS),
                f"{top.first_reward:.2f}",
                f"{top.final_reward:.2f}",
                f"{top.mean_reward:.3f}",
                f"{top.peak_rss_mib:.0f}",
            ]
        )
    if len(bests) == 2:
        ratios = [
            _report.fmt_ratio(bests["ours"][a], bests["trl"][a])
            if higher
            else _report.fmt_ratio(bests["trl"][a], bests["ours"][a])
            for _, a, _, higher in COLUMNS
        ]
        rss = _report.fmt_ratio(best(summaries, "ours").peak_rss_mib, best(summaries, "trl").peak_rss_mib)  # type: ignore[union-attr]
        rows.append(["ours / TRL (> 1: ours better; RSS: ours / TRL)", *ratios, "", "", "", rss])
    n_runs = max(1, len([s for s in summaries if s.kind == "ours"]))
    intro = (
        f"{settings.env_id} level {settings.levels}, tiny policy warm-started, device {settings.device}, "
        f"{settings.threads} torch thread(s); {settings.updates} updates of {settings.n_groups} prompts x "
        f"{settings.group_size} completions, max {settings.max_new_tokens} new tokens, temperature "
        f"{settings.temperature}, lr {settings.learning_rate} (constant), beta {settings.beta}, loss_type "
        f"{settings.loss_type}; {n_runs} run(s) per trainer, alternating, each in its own process; best run "
        f"per column; timings leave out the first {WARMUP_UPDATES} update(s) (warm-up)."
    )
    return intro + "\n\n" + _report.markdown_table(header, rows)


def plot(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
    """Reward per update (thin) and its running mean over ``FINAL_WINDOW`` updates (thick), per run."""

    def draw(ax: Any) -> None:
        runs = sorted({(r["trainer"], r["repeat"]) for r in rows})
        for trainer, repeat in runs:
            mine = [r for r in rows if r["trainer"] == trainer and r["repeat"] == repeat]
            x, y = [r["update"] for r in mine], [r["reward"] for r in mine]
            smooth = [statistics.fmean(y[max(0, i - FINAL_WINDOW + 1) : i + 1]) for i in range(len(y))]
            color = "C0" if trainer == "ours" else "C1"
            ax.plot(x, y, color=color, alpha=0.25, lw=0.8)
            ax.plot(
                x,
                smooth,
                color=color,
                lw=1.8,
                label=f"{'grpo_agent' if trainer == 'ours' else 'TRL'} (run {repeat}, mean of {FINAL_WINDOW})",
            )
        ax.set_xlabel("update")
        ax.set_ylabel("mean reward of the update's completions")
        ax.legend(fontsize=7)

    _report.save_plot(path, draw)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the comparison, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    defaults = Settings()
    parser.add_argument("--updates", type=int, default=defaults.updates, help="optimizer steps per run")
    parser.add_argument("--group-size", type=int, default=defaults.group_size, help="completions per prompt")
    parser.add_argument("--n-groups", type=int, default=defaults.n_groups, help="prompts per update")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="longest completion")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="constant learning rate")
    parser.add_argument("--beta", type=float, default=defaults.beta, help="KL coefficient")
    parser.add_argument("--loss-type", default=defaults.loss_type, choices=("grpo", "bnpo", "dr_grpo", "dapo"))
    parser.add_argument("--sft-steps", type=int, default=None, help="warm-start steps (default: the built-in budget)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="torch threads per run (1 is the fastest on a shared machine; see DEFAULT_THREADS)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=2, help="runs per trainer (alternating); the best is reported")
    parser.add_argument(
        "--no-share-prefix",
        action="store_true",
        help="ours without the shared-prompt forward (an ablation: where the speed comes from)",
    )
    parser.add_argument("--skip-trl", action="store_true", help="run only our side")
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument("--name", default="vs_trl", help="stem of the output files")
    args = parser.parse_args(argv)
    if args.worker:
        kind = _isolate_kind(args.worker)
        _isolate.worker_main(args.worker, run_ours if kind == "ours" else run_trl)
        return 0

    settings = Settings(
        group_size=args.group_size,
        n_groups=args.n_groups,
        max_new_tokens=args.max_new_tokens,
        learning_rate=args.learning_rate,
        beta=args.beta,
        loss_type=args.loss_type,
        updates=args.updates,
        seed=args.seed,
        sft_steps=args.sft_steps,
        threads=args.threads,
        device=args.device,
        share_prefix=not args.no_share_prefix,
    )
    include_trl = not args.skip_trl and trl_available()
    if not include_trl and not args.skip_trl:
        print("TRL is not installed (pip install trl, or the 'bench' extra): timing our side only")
    machine = _report.machine_description()
    summaries, rows = compare(settings, args.repeats, include_trl)
    text = table(summaries, settings)
    print("\n" + text)
    _report.write_csv(args.out_dir / f"{args.name}.csv", rows)
    _report.write_markdown(args.out_dir / f"{args.name}.md", text, machine)
    plot(rows, args.out_dir / f"{args.name}.png")
    return 0


def _isolate_kind(spec_path: str) -> str:
    import json

    return json.loads(pathlib.Path(spec_path).read_text(encoding="utf-8"))["kind"]


if __name__ == "__main__":
    sys.exit(main())
