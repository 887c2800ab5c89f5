"""Episode-level GRPO against hierarchical GRPO (GiGPO's anchor-state step advantages) on
multi-turn episodes, over seeds.

Two envs, each trained with ``step_advantage_weight=0`` (episode-level GRPO, the plain
algorithm) and ``step_advantage_weight=1`` (GiGPO's weight; ``step_discount=0.95``), the rest
equal:

- ``corridor`` (:class:`Corridor`): walk to a target with moves of 1, 2 or 3; some positions are
  traps. Its info declares the position as the state, so turns of different episodes that stand
  on the same square form one anchor group. The tiny policy starts untrained (its characters
  are the three moves), so everything it learns is RL.
- ``tooluse``: grpo/ToolUse-v0 (level 1, at most 3 turns) with the tiny policy, at a small
  budget. The tiny model is not warm-started by default: the built-in warm start teaches final
  answers only, never a tool call, so no tiny policy reaches a second turn either way.

Per run: the rollout reward of the first and last ``--window`` updates, the fraction of
zero-std groups, and ``rollout/step_advantage_abs`` (the mean size of the step terms).

Run::

    .venv/bin/python benchmarks/step_advantages.py                       # both envs, 3 seeds
    .venv/bin/python benchmarks/step_advantages.py --envs corridor --budget 4096

Writes ``step_advantages.md`` and ``step_advantages.csv`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO


class Corridor(gym.Env[str, str]):
    """A deterministic multi-turn walk: from 0 to the task's target, one move per turn.

    The action's last character says the move (``1``, ``2`` or ``3``; anything else ends the
    episode with 0). Reaching the target earns 1; overshooting it or landing on one of the
    task's traps ends the episode with 0; ``max_turns`` moves without either truncates it. The
    reply is ``"at <position>"``; ``info["state"]`` is the position (the Markov state), so the
    anchor groups of hierarchical GRPO meet across paths.

    :param n_tasks: tasks; task ``k`` has target ``5 + k % 3`` and traps drawn with ``seed``
        (every task keeps a trap-free path).
    :param max_turns: moves per episode.
    :param seed: the trap layout's seed.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_tasks: int = 6, max_turns: int = 6, seed: int = 0) -> None:
        self.max_turns = max_turns
        self.observation_space = spaces.Text(max_length=64, min_length=0)
        self.action_space = spaces.Text(max_length=64, min_length=0)
        rng = np.random.default_rng(seed)
        self.targets = [5 + k % 3 for k in range(n_tasks)]
        self.traps: list[set[int]] = []
        for target in self.targets:
            path = {0, target}
            position = 0
            while position < target:  # a random safe path of moves 1..3
                position += int(rng.integers(1, 4))
                path.add(min(position, target))
            self.traps.append({p for p in range(1, target) if p not in path and rng.random() < 0.7})
        self.task, self.position, self.turn = 0, 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.task = int((options or {}).get("task_id", self.np_random.integers(len(self.targets))))
        self.position, self.turn = 0, 0
        traps = " ".join(str(t) for t in sorted(self.traps[self.task]))
        return f"to {self.targets[self.task]} avoid {traps}:", {"task_id": self.task, "state": 0}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turn += 1
        text = action.strip()
        move = int(text[-1]) if text and text[-1] in "123" else None
        self.position += move if move is not None else 10**6
        target = self.targets[self.task]
        reward = float(self.position == target)
        done = move is None or self.position >= target or self.position in self.traps[self.task]
        truncated = not done and self.turn >= self.max_turns
        info = {"task_id": self.task, "state": self.position, "correct": bool(reward)}
        return f"at {self.position}", reward, done, truncated, info


class RolloutLog(BaseCallback):
    """Keeps every rollout's reward mean, zero-std fraction and step-term size."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        logged = self.logger.name_to_value
        self.rows.append(
            {
                "reward": float(logged["rollout/reward_mean"]),
                "frac_zero_std": float(logged["rollout/frac_zero_std"]),
                "step_abs": float(logged.get("rollout/step_advantage_abs", 0.0)),
                "turns": float(logged.get("rollout/turns", 0.0)),
            }
        )


def build(env_name: str, weight: float, seed: int, args: argparse.Namespace) -> GRPO:
    """The agent of one run."""
    common: dict[str, Any] = {
        "group_size": 8, "n_groups": args.n_groups, "beta": 0.0, "seed": seed,
        "step_advantage_weight": weight, "step_discount": 0.95,
    }  # fmt: skip
    if env_name == "corridor":
        policy_kwargs = {"sft_steps": 0, "charset": "123", "max_new_tokens": 2, "seed": seed}
        return GRPO("tiny", Corridor(), learning_rate=3e-3, policy_kwargs=policy_kwargs, **common)
    env = gym.make("grpo/ToolUse-v0", level=1, isolate_tools=False, max_turns=3)
    # ToolUse-v0's prompts (tool specs included) are ~1,100 characters: longer than the tiny
    # model's default 512 positions.
    policy_kwargs = {
        "sft_steps": args.tooluse_sft_steps, "max_new_tokens": 48, "seed": seed,
        "tiny_config": {"max_position_embeddings": 2048},
    }  # fmt: skip
    return GRPO("tiny", env, learning_rate=2e-4, policy_kwargs=policy_kwargs, **common)


def run_one(env_name: str, weight: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one arm and summarise its rollouts."""
    start = time.perf_counter()
    model = build(env_name, weight, seed, args)
    log = RolloutLog()
    budget = args.budget if env_name == "corridor" else args.tooluse_budget
    model.learn(budget, log, log_interval=0)
    rows, w = log.rows, args.window
    return {
        "env": env_name,
        "arm": "episode-level GRPO" if weight == 0 else f"GiGPO (step_advantage_weight={weight:g})",
        "seed": seed,
        "reward_first": round(statistics.fmean(r["reward"] for r in rows[:w]), 4),
        "reward_last": round(statistics.fmean(r["reward"] for r in rows[-w:]), 4),
        "frac_zero_std": round(statistics.fmean(r["frac_zero_std"] for r in rows), 4),
        "step_advantage_abs": round(statistics.fmean(r["step_abs"] for r in rows), 4),
        "turns": round(statistics.fmean(r["turns"] for r in rows), 3),
        "episodes": model.num_timesteps,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both arms on every env and seed, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--envs", nargs="+", default=["corridor", "tooluse"], choices=["corridor", "tooluse"])
    parser.add_argument("--budget", type=int, default=4096, help="corridor episodes per run")
    parser.add_argument("--tooluse-budget", type=int, default=64, help="ToolUse-v0 episodes per run")
    parser.add_argument(
        "--tooluse-sft-steps",
        type=int,
        default=0,
        help="the tiny policy's warm start on ToolUse-v0 (0: none; its SFT targets are the final answers, "
        "never a tool call)",
    )
    parser.add_argument("--n-groups", type=int, default=4, help="prompts per update (groups of 8)")
    parser.add_argument("--window", type=int, default=5, help="updates averaged at the start and the end")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for env_name in args.envs:
        for seed in args.seeds:
            for weight in (0.0, 1.0):
                row = run_one(env_name, weight, seed, args)
                print(row, flush=True)
                rows.append(row)
    summary = []
    for env_name in args.envs:
        for arm in dict.fromkeys(r["arm"] for r in rows if r["env"] == env_name):
            mine = [r for r in rows if r["env"] == env_name and r["arm"] == arm]
            summary.append(
                [
                    env_name,
                    arm,
                    f"{statistics.fmean(r['reward_first'] for r in mine):.3f}",
                    f"{statistics.fmean(r['reward_last'] for r in mine):.3f} ("
                    + ", ".join(f"{r['reward_last']:.2f}" for r in mine)
                    + ")",
                    f"{statistics.fmean(r['frac_zero_std'] for r in mine):.3f}",
                    f"{statistics.fmean(r['step_advantage_abs'] for r in mine):.3f}",
                    f"{statistics.fmean(r['turns'] for r in mine):.2f}",
                    f"{mine[0]['episodes']:,}",
                ]
            )
    text = (
        f"# Episode-level GRPO vs hierarchical GRPO (GiGPO) on multi-turn episodes, seeds {args.seeds}\n\n"
        f"Reward = mean rollout reward of the first / last {args.window} updates ({args.n_groups} prompts x 8 "
        "episodes per update); mean over seeds, then each seed.\n\n"
        + _report.markdown_table(
            [
                "env",
                "arm",
                "reward, first updates",
                "reward, last updates",
                "frac zero-std groups",
                "mean abs step term",
                "turns per episode",
                "episodes",
            ],
            summary,
        )
    )
    _report.publish(args.out_dir, "step_advantages", text, rows, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
