"""Fixed reward weights against per-component normalisation and adaptive weights, on a bandit
whose reward has a component that is easy to game.

The env (:class:`GameableBandit`) is grpo/Bandit-v0 with its reward split into two components:
``correct`` (1 for the context's best action, else 0: hard, one action in six) and ``style``
(a score in ``[0, style_scale]``: every context has one "gaming" action with the top score,
and the best action scores low). With fixed weights 1:1 the weighted sum is highest on the
gaming action, so plain GRPO learns to game ``style``. Every arm trains the tabular policy
with the same hyperparameters and reports the exact expected ``correct`` and ``style`` of the
final policy (the tabular policy's probabilities against the env's tables):

- fixed 1:1 (``sum_then_normalize``): GRPO as it is;
- fixed 1.6:0.4, weights a user who knew the scales would pick by hand;
- fixed 1:1 with ``normalize_then_sum`` (GDPO);
- adaptive weights from 1:1, target shares ``correct`` 0.8 / ``style`` 0.2 (both orders).

Run::

    .venv/bin/python benchmarks/reward_weights.py                 # 3 seeds
    .venv/bin/python benchmarks/reward_weights.py --seeds 0 1 2 3 4 --budget 8192

Writes ``reward_weights.md`` and ``reward_weights.csv`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

from grpo_agent import GRPO
from grpo_envs.envs.bandit import ContextualBanditEnv


class GameableBandit(gym.Wrapper[np.int64, np.int64, np.int64, np.int64]):
    """grpo/Bandit-v0 (noise-free) with two reward components in ``info["reward_components"]``.

    - ``correct``: 1.0 for the context's best action, else 0.0;
    - ``style``: ``style_scale`` for the context's gaming action (never the best one),
      ``0.2 * style_scale`` for the best action, uniform in ``[0, 0.5 * style_scale)`` otherwise.

    The env's own reward is ``correct + style``.

    :param style_scale: the top style score.
    :param kwargs: :class:`~grpo_envs.envs.bandit.ContextualBanditEnv`'s arguments.
    """

    def __init__(self, style_scale: float = 3.0, **kwargs: Any) -> None:
        kwargs.setdefault("noise_std", 0.0)
        super().__init__(ContextualBanditEnv(**kwargs))
        inner: ContextualBanditEnv = self.env.unwrapped  # type: ignore[assignment]
        rng = np.random.default_rng(kwargs.get("table_seed", 0) + 1)
        n_states, n_actions = inner.n_states, inner.n_actions
        self.best_actions = inner.best_actions
        self.gaming_actions = (self.best_actions + 1 + rng.integers(n_actions - 1, size=n_states)) % n_actions
        self.style = rng.uniform(0.0, 0.5, size=(n_states, n_actions))
        self.style[np.arange(n_states), self.gaming_actions] = 1.0
        self.style[np.arange(n_states), self.best_actions] = 0.2
        self.style *= style_scale
        self._state = 0

    def reset(self, **kwargs: Any) -> tuple[np.int64, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._state = int(obs)
        return obs, info

    def step(self, action: Any) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        parts = {"correct": float(info["correct"]), "style": float(self.style[self._state, int(action)])}
        return obs, sum(parts.values()), terminated, truncated, {**info, "reward_components": parts}

    def expected_components(self, probs: np.ndarray) -> dict[str, float]:
        """Exact expected components of a ``(n_states, n_actions)`` policy, contexts uniform."""
        n = np.arange(len(self.best_actions))
        return {
            "correct": float(probs[n, self.best_actions].mean()),
            "style": float((probs * self.style).sum(axis=1).mean()),
            "gaming": float(probs[n, self.gaming_actions].mean()),
        }


#: The arms: GRPO's keyword arguments beyond the shared ones.
WEIGHTS = {"correct": 1.0, "style": 1.0}
TARGETS = {"correct": 0.8, "style": 0.2}
ARMS: dict[str, dict[str, Any]] = {
    "fixed 1:1": {"reward_weights": WEIGHTS},
    # What a user who knew the scales would set by hand (same total weight): the reference the
    # adaptive rule should approach without being told the scales.
    "fixed 1.6:0.4 (hand-tuned)": {"reward_weights": {"correct": 1.6, "style": 0.4}},
    "fixed 1:1, normalize_then_sum": {"reward_weights": WEIGHTS, "multi_objective_aggregation": "normalize_then_sum"},
    "adaptive 0.8/0.2": {"reward_weights": WEIGHTS, "reward_weight_targets": TARGETS},
    "adaptive 0.8/0.2, normalize_then_sum": {
        "reward_weights": WEIGHTS, "reward_weight_targets": TARGETS,
        "multi_objective_aggregation": "normalize_then_sum",
    },
}  # fmt: skip
COMMON: dict[str, Any] = {"learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04}


def run_one(arm: str, seed: int, budget: int) -> dict[str, Any]:
    """Train one arm; the final policy's exact expected components and the final weights."""
    env = GameableBandit()
    start = time.perf_counter()
    model = GRPO("tabular", env, seed=seed, **COMMON, **ARMS[arm]).learn(budget)
    expected = env.expected_components(model.policy.action_probs())
    weights = model.current_reward_weights or {}
    return {
        "arm": arm,
        "seed": seed,
        **{f"expected_{k}": round(v, 4) for k, v in expected.items()},
        **{f"final_weight_{k}": round(v, 3) for k, v in weights.items()},
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every arm on every seed, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=8192, help="completions per run")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), metavar="NAME")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = [run_one(arm, seed, args.budget) for arm in args.arms for seed in args.seeds]
    summary = []
    for arm in args.arms:
        mine = [r for r in rows if r["arm"] == arm]
        summary.append(
            [arm]
            + [
                f"{statistics.fmean(r[k] for r in mine):.3f} ({', '.join(f'{r[k]:.2f}' for r in mine)})"
                for k in ("expected_correct", "expected_gaming", "expected_style")
            ]
            + [", ".join(f"{r['final_weight_correct']:.2f}:{r['final_weight_style']:.2f}" for r in mine)]
        )
    text = (
        f"# Reward weights on a gameable two-component bandit, seeds {args.seeds}\n\n"
        f"Tabular GRPO ({COMMON}), {args.budget:,} completions per run; expected values of the final policy "
        "(mean over seeds, then each seed). `correct` is the objective; `gaming` is the probability of the "
        "action that games `style`.\n\n"
        + _report.markdown_table(
            ["arm", "expected correct", "P(gaming action)", "expected style (0-3)", "final weights correct:style"],
            summary,
        )
    )
    _report.publish(args.out_dir, "reward_weights", text, rows, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
