"""SB3-style callbacks and logger on GRPO: hook order, early stop, CSV/TensorBoard, progress bar."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import gymnasium as gym
import pandas as pd
import pytest

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO, EvalCallback, ProgressBarCallback, configure
from grpo_agent.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    StopTrainingOnRewardThreshold,
)

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "agent.md"


def _model(**kwargs: Any) -> GRPO:
    params = {"learning_rate": 0.1, "group_size": 4, "n_groups": 8, "seed": 0, "device": "cpu"}
    params.update(kwargs)
    return GRPO("tabular", gym.make("grpo/Bandit-v0"), **params)


class _Recorder(BaseCallback):
    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.events: list[str] = []
        self.stop_after = stop_after

    def _on_training_start(self) -> None:
        self.events.append("training_start")

    def _on_rollout_start(self) -> None:
        self.events.append("rollout_start")

    def _on_step(self) -> bool:
        self.events.append("step")
        assert "reward" in self.locals and "info" in self.locals
        return self.stop_after is None or self.n_calls < self.stop_after

    def _on_rollout_end(self) -> None:
        self.events.append("rollout_end")

    def _on_training_end(self) -> None:
        self.events.append("training_end")


def test_hooks_fire_in_sb3_order_once_per_completion() -> None:
    recorder = _Recorder()
    model = _model()
    model.learn(64, callback=[recorder])
    per_rollout = ["rollout_start"] + ["step"] * 32 + ["rollout_end"]
    assert recorder.events == ["training_start"] + per_rollout * 2 + ["training_end"]
    assert recorder.num_timesteps == model.num_timesteps == 64


def test_a_callback_returning_false_stops_training() -> None:
    recorder = _Recorder(stop_after=10)
    model = _model()
    model.learn(1000, callback=recorder)
    assert model.num_timesteps == 10
    assert recorder.events[-1] == "training_end" and "rollout_end" not in recorder.events


def test_function_callbacks_are_accepted() -> None:
    calls: list[int] = []

    def on_step(locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        calls.append(1)
        return len(calls) < 5

    model = _model()
    model.learn(100, callback=on_step)
    assert model.num_timesteps == 5


def _documented_metrics() -> set[str]:
    """The metric names in docs/agent.md's table (rows like "| `train/kl` | ... |")."""
    text = DOCS.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `((?:rollout|train|time|eval)/[a-z_<>]+)` \|", text, flags=re.MULTILINE))


def test_csv_and_tensorboard_hold_every_documented_metric(tmp_path: pathlib.Path) -> None:
    model = _model(beta=0.04)
    logger = configure(str(tmp_path), ["csv", "tensorboard"])
    model.set_logger(logger)
    model.learn(64, callback=EvalCallback(gym.make("grpo/Bandit-v0"), n_eval_episodes=4, eval_freq=32, verbose=0))
    logger.close()  # a logger given to set_logger is the caller's to close
    frame = pd.read_csv(tmp_path / "progress.csv")
    assert len(frame) == 2 and frame["time/total_timesteps"].tolist() == [32, 64]
    logged = set(frame.columns)
    documented = _documented_metrics()
    # only with reward components (test_grpo_bandit), overlong shaping (test_variants), a
    # filtering prompt sampler (test_prompt_samplers), reward workers (test_reward_workers,
    # test_ray_rewards) or the vLLM engine (test_vllm_engine)
    conditional = {"rollout/reward_<name>", "rollout/overlong_penalty", "rollout/prompts_filled"}
    conditional |= {"rollout/reward_worker_deaths"}
    conditional |= {"rollout/logprob_diff_mean", "rollout/logprob_diff_max", "rollout/is_ratio_mean"}
    conditional |= {"rollout/is_clip_fraction"}
    # adaptive reward weights and shares (test_multi_objective), multi-turn turns and step-level
    # advantages (test_step_advantages)
    conditional |= {"rollout/reward_weight_<name>", "rollout/advantage_share_<name>"}
    conditional |= {"rollout/turns", "rollout/step_advantage_abs"}
    assert documented - conditional == logged, documented ^ logged
    required = {
        "rollout/reward_mean", "rollout/reward_std", "rollout/frac_zero_std", "train/kl", "train/entropy",
        "train/clip_fraction_low", "train/clip_fraction_high", "train/approx_kl", "train/grad_norm",
        "train/learning_rate", "time/rollout_s", "time/reward_s", "time/update_s",
    }  # fmt: skip
    assert required <= logged
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_verbose_prints_the_metrics_table(capsys: pytest.CaptureFixture[str]) -> None:
    _model(verbose=1).learn(32)
    out = capsys.readouterr().out
    for key in ("reward_mean", "frac_zero_std", "clip_fraction_high", "grad_norm", "update_s"):
        assert key in out


def test_tensorboard_log_argument_writes_tensorboard_and_csv(tmp_path: pathlib.Path) -> None:
    _model(tensorboard_log=str(tmp_path)).learn(32)
    _model(tensorboard_log=str(tmp_path)).learn(32)
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["GRPO_1", "GRPO_2"]
    assert list((tmp_path / "GRPO_1").glob("events.out.tfevents.*"))
    assert (tmp_path / "GRPO_1" / "progress.csv").exists()


def test_progress_bar_counts_every_completion() -> None:
    bar = ProgressBarCallback()
    model = _model()
    model.learn(96, callback=bar)
    assert bar.pbar.n == bar.pbar.total == 96
    _model().learn(32, progress_bar=True)  # the built-in switch runs too


def test_sb3_checkpoint_callback_saves_loadable_agents(tmp_path: pathlib.Path) -> None:
    model = _model()
    model.learn(64, callback=CheckpointCallback(save_freq=32, save_path=str(tmp_path), name_prefix="grpo"))
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["grpo_32_steps.zip", "grpo_64_steps.zip"]
    loaded = GRPO.load(tmp_path / "grpo_64_steps.zip")
    assert loaded.num_timesteps == 64


def test_eval_callback_can_stop_training_at_a_reward_threshold(tmp_path: pathlib.Path) -> None:
    stop = StopTrainingOnRewardThreshold(reward_threshold=0.9, verbose=0)
    evaluator = EvalCallback(
        gym.make("grpo/Bandit-v0", noise_std=0.0), callback_on_new_best=stop, n_eval_episodes=16, eval_freq=256,
        best_model_save_path=str(tmp_path), verbose=0,
    )  # fmt: skip
    model = _model(group_size=8, n_groups=16)
    model.learn(50_000, callback=evaluator)
    assert evaluator.best_mean_reward >= 0.9
    assert model.num_timesteps < 50_000
    assert (tmp_path / "best_model.zip").exists()
