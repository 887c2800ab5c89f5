"""Samples needed to reach 95% of the optimal expected reward on grpo/Bandit-v0: GRPO vs SB3 PPO.

After every policy update the exact expected reward of the current policy is computed from
its action probabilities (all contexts, all actions enumerated), and the run stops at the
first update that reaches ``threshold * optimal``. The sample count is the number of env
steps used up to that update. SB3's ``PPO("MlpPolicy", env)`` trains on Bandit-v0 unchanged.

Run::

    .venv/bin/python benchmarks/bandit_sample_efficiency.py
    .venv/bin/python benchmarks/bandit_sample_efficiency.py --seeds 0 1 2 --max-steps 100000

Writes ``<out-dir>/bandit_sample_efficiency.csv`` (one row per agent and seed),
``bandit_sample_efficiency.md`` (the table printed at the end) and a PNG of the curves.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO


@dataclass
class Run:
    """One agent on one seed: the exact-reward curve and where it crossed the threshold."""

    agent: str
    seed: int
    samples_to_threshold: int | None = None
    seconds: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)


class ExactRewardStopper(BaseCallback):
    """Before each rollout (i.e. after each update) compute the exact expected reward with
    ``probs_fn`` and stop training once it reaches the target."""

    def __init__(self, env: gym.Env, probs_fn: Callable[[], np.ndarray], target: float, run: Run) -> None:
        super().__init__()
        self.env, self.probs_fn, self.target, self.run = env, probs_fn, target, run
        self._stop = False

    def _on_rollout_start(self) -> None:
        value = float(self.env.unwrapped.expected_reward(self.probs_fn()))
        self.run.curve.append((self.model.num_timesteps, value))
        if value >= self.target and self.run.samples_to_threshold is None:
            self.run.samples_to_threshold = self.model.num_timesteps
            self._stop = True

    def _on_step(self) -> bool:
        return not self._stop


def ppo_action_probs(model: PPO, n_states: int) -> np.ndarray:
    """The MlpPolicy's action probabilities for every context."""
    with torch.no_grad():
        obs, _ = model.policy.obs_to_tensor(np.arange(n_states))
        return model.policy.get_distribution(obs).distribution.probs.cpu().numpy().astype(np.float64)


AGENTS: dict[str, tuple[str, dict[str, Any]]] = {
    # name: (kind, keyword arguments)
    "GRPO (tabular, G=8, 16 groups, lr=0.1, beta=0.04)": (
        "grpo", {"learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04},
    ),
    # PPO's update schedule (10 epochs of minibatches of 64 per rollout) applied to GRPO.
    "GRPO (tabular, G=8, 16 groups, lr=0.1, beta=0.04, n_epochs=10, batch_size=64)": (
        "grpo", {"learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04, "n_epochs": 10, "batch_size": 64},
    ),
    "SB3 PPO MlpPolicy (defaults: n_steps=2048)": ("ppo", {}),
    "SB3 PPO MlpPolicy (n_steps=128, batch_size=64)": ("ppo", {"n_steps": 128, "batch_size": 64}),
}  # fmt: skip


def run_one(agent: str, seed: int, max_steps: int, threshold: float, env_kwargs: dict[str, Any]) -> Run:
    kind, kwargs = AGENTS[agent]
    env = gym.make("grpo/Bandit-v0", **env_kwargs)
    run = Run(agent, seed)
    target = threshold * env.unwrapped.optimal_expected_reward
    start = time.perf_counter()
    if kind == "grpo":
        model: Any = GRPO("tabular", env, seed=seed, device="cpu", **kwargs)
        stopper = ExactRewardStopper(env, model.policy.action_probs, target, run)
    else:
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
        stopper = ExactRewardStopper(env, lambda: ppo_action_probs(model, env.unwrapped.n_states), target, run)
    model.learn(max_steps, callback=stopper)
    if run.samples_to_threshold is None:  # check the final policy too
        stopper.on_rollout_start()
    run.seconds = time.perf_counter() - start
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds to run")
    parser.add_argument("--max-steps", type=int, default=300_000, help="env-step budget per run")
    parser.add_argument("--threshold", type=float, default=0.95, help="fraction of the optimal expected reward")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS), help="agents to compare")
    parser.add_argument(
        "--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"), help="output folder"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # both agents are tiny; threads only add overhead on a shared machine

    runs: list[Run] = []
    for agent in args.agents:
        for seed in args.seeds:
            run = run_one(agent, seed, args.max_steps, args.threshold, {})
            runs.append(run)
            print(f"{agent} seed {seed}: {run.samples_to_threshold} samples ({run.seconds:.1f} s)", flush=True)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / "bandit_sample_efficiency"
    with open(f"{stem}.csv", "w", encoding="utf-8") as f:
        f.write("agent,seed,samples_to_threshold,seconds\n")
        f.writelines(
            f'"{r.agent}",{r.seed},{"" if r.samples_to_threshold is None else r.samples_to_threshold},{r.seconds:.2f}\n'
            for r in runs
        )

    lines = [
        (
            f"Samples (env steps) to reach {args.threshold:.0%} of the optimal expected reward on grpo/Bandit-v0, "
            f"seeds {args.seeds}, budget {args.max_steps}:"
        ),
        "",
        "| agent | median samples | per seed | median seconds |",
        "|---|---|---|---|",
    ]
    for agent in args.agents:
        mine = [r for r in runs if r.agent == agent]
        reached = [r.samples_to_threshold for r in mine]
        median = (
            f"{statistics.median(reached):,.0f}" if all(x is not None for x in reached) else
            f"not reached by {sum(x is None for x in reached)} seed(s)"
        )  # fmt: skip
        per_seed = ", ".join("-" if x is None else f"{x:,}" for x in reached)
        lines.append(f"| {agent} | {median} | {per_seed} | {statistics.median(r.seconds for r in mine):.1f} |")
    table = "\n".join(lines)
    print("\n" + table)
    pathlib.Path(f"{stem}.md").write_text(table + "\n", encoding="utf-8")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for i, agent in enumerate(args.agents):
            for j, r in enumerate(x for x in runs if x.agent == agent):
                steps, values = zip(*r.curve) if r.curve else ((), ())
                ax.plot(steps, values, color=f"C{i}", alpha=0.6, label=agent if j == 0 else None)
        ax.axhline(args.threshold, color="k", ls="--", lw=0.8)
        ax.set_xscale("symlog", linthresh=1000)
        ax.set_xlabel("env steps")
        ax.set_ylabel("exact expected reward")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(f"{stem}.png", dpi=120)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
