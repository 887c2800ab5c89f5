"""The run folder of ``grpo train``: what a run writes, and what lets it resume.

::

    runs/<name>/
      config.json        every setting of the run (what --resume reads back)
      progress.csv       one row per update: rollout/*, train/*, time/* metrics, and every
                         --eval-every updates eval/heldout_accuracy (greedy, held-out split)
      tb/                TensorBoard event files (``tensorboard --logdir runs/<name>/tb``; with
                         --report-to tensorboard, the default), sampled completions in its text tab
      completions.csv    with --log-completions-every N: every N updates, the rollout's prompts,
                         completions, rewards and verdicts (correct, reason)
      checkpoint.zip     the last checkpoint: agent, optimiser and RNG states (written atomically)
      model/             the trained policy as a Hugging Face model folder (final step)
      reward_curve.png   rollout reward and held-out accuracy against completions seen
      summary.json       held-out greedy/sampled accuracy and pass@k before and after (with
                         95% intervals), time, peak memory, faults
      summary.md         the same, as tables to read
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import resource
import sys
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger

CONFIG_FILE = "config.json"
PROGRESS_FILE = "progress.csv"
CHECKPOINT_FILE = "checkpoint.zip"
SUMMARY_FILE = "summary.json"
CURVE_FILE = "reward_curve.png"
MODEL_DIR = "model"


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV writer, but continuing an existing file (a resumed run) instead of truncating it."""

    def __init__(self, filename: str) -> None:
        if not os.path.exists(filename) or os.path.getsize(filename) == 0:
            super().__init__(filename)
            return
        self.file = open(filename, "r+")  # noqa: SIM115 - closed by close()
        header = self.file.readline().strip()
        self.keys = header.split(",") if header else []
        self.separator, self.quotechar = ",", '"'
        self.file.seek(0, os.SEEK_END)


def make_run_logger(
    run_dir: pathlib.Path, stdout: bool, report_to: str = "tensorboard", settings: dict[str, Any] | None = None
) -> Logger:
    """A logger writing CSV (appended) into ``run_dir``, reporting to ``report_to``
    (:func:`~grpo_agent.run.tracking.tracker_formats`: TensorBoard in ``run_dir/tb`` by
    default), plus stdout if asked."""
    from stable_baselines3.common.logger import HumanOutputFormat

    from grpo_agent.run.tracking import tracker_formats

    formats: list[Any] = [
        AppendingCSVOutputFormat(str(run_dir / PROGRESS_FILE)),
        *tracker_formats(report_to, run_dir, settings or {}),
    ]
    if stdout:
        formats.append(HumanOutputFormat(sys.stdout))
    return Logger(folder=str(run_dir), output_formats=formats)


class RunCallback(BaseCallback):
    """Checkpoints every ``save_every`` updates (atomically), and logs skipped non-finite
    updates (``train/skipped_nonfinite``, cumulative) from a :class:`FiniteGuardAdamW`.

    :param run_dir: the run folder.
    :param save_every: rollouts between checkpoints (0: only at the end).
    """

    def __init__(self, run_dir: pathlib.Path, save_every: int) -> None:
        super().__init__()
        self.run_dir, self.save_every = run_dir, save_every
        self.rollouts = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # on_rollout_end runs before the update of this rollout: record what the previous
        # updates skipped, and checkpoint the weights those updates produced.
        # self.model is our BaseAlgorithm (SB3's callbacks type it as SB3's own)
        skipped = getattr(getattr(self.model, "optimizer", None), "skipped_steps", 0)
        self.logger.record("train/skipped_nonfinite", skipped)
        self.rollouts += 1
        if self.save_every and self.rollouts % self.save_every == 0:
            from grpo_agent.run.faults import atomic_save

            atomic_save(self.model, self.run_dir / CHECKPOINT_FILE)


class HeldoutAccuracyCallback(BaseCallback):
    """Greedy held-out accuracy every ``every`` updates, logged as ``eval/heldout_accuracy``
    together with ``eval/trained_completions``, the completions the evaluated weights were
    trained on (the reward curve's x for that point).

    It runs at the end of a rollout, before that rollout's update, so it measures the weights
    the previous updates produced; the policy's sampling RNG is untouched (greedy decoding).

    :param eval_env: the held-out env.
    :param n_tasks: its first ``n_tasks`` tasks are answered.
    :param every: updates between evaluations (0: never).
    """

    def __init__(self, eval_env: Any, n_tasks: int, every: int) -> None:
        super().__init__()
        self.eval_env, self.n_tasks, self.every = eval_env, n_tasks, every
        self.rollouts = 0
        self.trained_on = 0

    def _on_training_start(self) -> None:
        self.trained_on = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        from grpo_agent.run.accuracy import evaluate_accuracy

        self.rollouts += 1
        # Rollout 1 sees the starting weights, which the run measured before training.
        if self.every and self.rollouts > 1 and (self.rollouts - 1) % self.every == 0:
            accuracy = evaluate_accuracy(self.model.policy, self.eval_env, self.n_tasks).accuracy
            self.logger.record("eval/heldout_accuracy", accuracy)
            self.logger.record("eval/trained_completions", self.trained_on)
        self.trained_on = self.model.num_timesteps


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def read_progress(run_dir: pathlib.Path) -> list[dict[str, str]]:
    """The rows of ``progress.csv`` (empty when there is none)."""
    path = run_dir / PROGRESS_FILE
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def plot_reward_curve(
    run_dir: pathlib.Path, title: str, before: float | None = None, after: float | None = None
) -> pathlib.Path | None:
    """Draw ``reward_curve.png``: rollout reward (and its running mean) against completions,
    and held-out greedy accuracy at the start, at every mid-run evaluation and at the end.
    None if nothing was logged."""
    progress = read_progress(run_dir)
    rows = [r for r in progress if r.get("rollout/reward_mean") not in (None, "")]
    if not rows:
        return None
    held = [
        (float(r["eval/trained_completions"]), float(r["eval/heldout_accuracy"]))
        for r in progress
        if r.get("eval/heldout_accuracy") not in (None, "") and r.get("eval/trained_completions") not in (None, "")
    ]
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    x = [float(r["time/total_timesteps"]) for r in rows]
    y = [float(r["rollout/reward_mean"]) for r in rows]
    window = max(1, len(y) // 20)
    smooth = [sum(y[max(0, i - window + 1) : i + 1]) / len(y[max(0, i - window + 1) : i + 1]) for i in range(len(y))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, color="tab:blue", alpha=0.3, label="rollout reward (train tasks, sampled)")
    ax.plot(x, smooth, color="tab:blue", label=f"running mean ({window} updates)")
    points = ([(0.0, before)] if before is not None else []) + held + ([(x[-1], after)] if after is not None else [])
    if points:
        label = "held-out accuracy (greedy)"
        if before is not None and after is not None:
            label += f": {before:.1%} -> {after:.1%}"
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="tab:green", label=label)
    ax.set_xlabel("completions")
    ax.set_ylabel("reward / accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = run_dir / CURVE_FILE
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json_atomic(path: pathlib.Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


#: The held-out reports of a summary (``EvalReport.as_dict()``), shown side by side in summary.md.
REPORT_KEYS = ("heldout_before", "heldout_after")


def _report_table(summary: dict[str, Any]) -> list[str]:
    """Held-out quantities before and after, one row each, with their 95% intervals."""
    reports = [summary.get(k) for k in REPORT_KEYS]
    if not any(isinstance(r, dict) for r in reports):
        return []
    first = next(r for r in reports if isinstance(r, dict))
    names = [k for k, v in first.items() if isinstance(v, dict) and "value" in v]

    def cell(report: Any, name: str) -> str:
        if not isinstance(report, dict) or name not in report:
            return ""
        e = report[name]
        return f"{e['value']:.1%} [{e['ci95_low']:.1%}, {e['ci95_high']:.1%}]"

    lines = [
        f"Held-out split, first {first['n_tasks']} tasks; sampled at temperature {first['temperature']:g}, "
        f"{first['n_samples']} samples per task; 95% intervals (Wilson for greedy, normal over tasks otherwise).",
        "",
        "| held-out | before | after |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name.replace('_', ' ')} | {cell(reports[0], name)} | {cell(reports[1], name)} |" for name in names]
    return [*lines, ""]


def write_summary(run_dir: pathlib.Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and a readable ``summary.md`` (the held-out reports side by side, then
    every other entry)."""
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    lines = [*_report_table(summary), "| quantity | value |", "| --- | --- |"]
    for key, value in summary.items():
        if key in REPORT_KEYS:
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        lines.append(f"| {key} | {value} |")
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")
