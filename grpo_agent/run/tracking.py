"""Where a ``grpo train`` run reports (``--report-to``), and the table of sampled completions
(``--log-completions-every``).

``progress.csv`` is always written (the reward curve and ``--resume`` read it); beside it a run
reports to TensorBoard (the default, ``runs/<name>/tb``), Weights & Biases, trackio, or nothing
else. wandb and trackio are optional extras (``pip install 'grpo-gym[wandb]'``,
``'grpo-gym[trackio]'``), imported only when chosen.
"""

from __future__ import annotations

import csv
import importlib.util
import pathlib
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, TensorBoardOutputFormat

#: ``--report-to`` choices.
REPORT_TO = ("tensorboard", "wandb", "trackio", "none")
#: The table of sampled completions in the run folder.
COMPLETIONS_FILE = "completions.csv"
#: Rows of each table shown as TensorBoard text (the CSV has every row).
TEXT_ROWS = 8


def report_to_problem(report_to: str) -> str | None:
    """What is missing for ``--report-to``, in one sentence (None: nothing)."""
    if report_to in ("wandb", "trackio") and importlib.util.find_spec(report_to) is None:
        return f"--report-to {report_to} needs the {report_to} package: pip install 'grpo-gym[{report_to}]'"
    return None


class TrackerOutputFormat(KVWriter):
    """SB3's logger writing each dump's numbers to wandb or trackio (both take
    ``init(project, name, config)``, ``log(values, step)`` and ``finish()``).

    :param library: ``"wandb"`` or ``"trackio"``.
    :param run_dir: the run folder (its name names the tracked run).
    :param settings: the run's settings, kept as the tracked run's config.
    """

    def __init__(self, library: str, run_dir: pathlib.Path, settings: dict[str, Any]) -> None:
        self.tracker: Any = __import__(library)
        init_kwargs: dict[str, Any] = {"project": "grpo-gym", "name": run_dir.name, "config": settings}
        if library == "wandb":
            init_kwargs["dir"] = str(run_dir)  # its files stay inside the run folder
        self.tracker.init(**init_kwargs)

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        numbers = {k: v for k, v in key_values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.tracker.log(numbers, step=step)

    def close(self) -> None:
        self.tracker.finish()


def tracker_formats(report_to: str, run_dir: pathlib.Path, settings: dict[str, Any]) -> list[KVWriter]:
    """The logger outputs ``--report-to`` adds to ``progress.csv``."""
    if report_to == "tensorboard":
        return [TensorBoardOutputFormat(str(run_dir / "tb"))]
    if report_to in ("wandb", "trackio"):
        return [TrackerOutputFormat(report_to, run_dir, settings)]
    return []


class CompletionsTableCallback(BaseCallback):
    """Every ``every`` rollouts, the rollout's completions with their prompt, reward, and the
    env's verdict (``info["correct"]``, ``info["reason"]``): all rows appended to
    ``completions.csv``, the first :data:`TEXT_ROWS` as a TensorBoard text table
    (``completions`` tab) when the run reports to TensorBoard.

    :param run_dir: the run folder.
    :param every: rollouts between tables (0: never).
    """

    COLUMNS = ("timesteps", "group", "prompt", "completion", "reward", "correct", "reason")

    def __init__(self, run_dir: pathlib.Path, every: int) -> None:
        super().__init__()
        self.path, self.every = run_dir / COMPLETIONS_FILE, every
        self.rollouts = 0
        self.scored: list[tuple[float, dict[str, Any]]] = []

    def _on_rollout_start(self) -> None:
        self.scored = []

    def _on_step(self) -> bool:
        if self.every:
            self.scored.append((float(self.locals["reward"]), self.locals["info"]))
        return True

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if not self.every or (self.rollouts - 1) % self.every:
            return
        rows = self.rows()
        if not rows:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(self.COLUMNS)
            writer.writerows(rows)
        for output in self.logger.output_formats:
            if isinstance(output, TensorBoardOutputFormat):
                output.writer.add_text(
                    "completions", markdown_table(self.COLUMNS, rows[:TEXT_ROWS]), self.num_timesteps
                )
                output.writer.flush()

    def rows(self) -> list[tuple[Any, ...]]:
        """The last sampling round's completions (GRPO's ``completions``, PPO's ``batch``) with
        the rewards and infos the env gave them, in order."""
        observations = self.locals.get("observations") or []
        batch = self.locals.get("completions", self.locals.get("batch"))
        actions = list(getattr(batch, "actions", []) or [])
        if not observations or not actions or len(self.scored) < len(actions):
            return []
        per_prompt = max(1, len(actions) // len(observations))
        scored = self.scored[-len(actions) :]
        return [
            (
                self.num_timesteps,
                i // per_prompt,
                str(observations[min(i // per_prompt, len(observations) - 1)]),
                str(action),
                reward,
                info.get("correct", ""),
                info.get("reason", ""),
            )
            for i, (action, (reward, info)) in enumerate(zip(actions, scored, strict=True))
        ]


def markdown_table(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A markdown table (TensorBoard renders its text tab as markdown); cells on one line.

    >>> print(markdown_table(("a", "b"), [(1, "x|y\\nz")]))
    | a | b |
    | --- | --- |
    | 1 | x\\|y z |
    """

    def cell(value: Any) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])
