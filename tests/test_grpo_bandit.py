"""GRPO end to end on grpo/Bandit-v0: it learns, saves/loads exactly, and every knob acts."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO, TabularPolicy, evaluate_policy, exact_expected_reward
from grpo_envs.envs.bandit import ContextualBanditEnv

#: Completions per seed in the learning test; GRPO needs ~4k here (see benchmarks/).
LEARNING_BUDGET = 8192


class _RecordLastValues:
    """Keeps the logger's values before each dump (SB3's logger clears them on dump)."""

    def __init__(self, model: GRPO) -> None:
        self.values: dict[str, Any] = {}
        dump = model.logger.dump

        def record_then_dump(step: int = 0) -> None:
            self.values = dict(model.logger.name_to_value)
            dump(step)

        model.logger.dump = record_then_dump  # type: ignore[method-assign]


def _model(env: gym.Env | None = None, **kwargs: Any) -> GRPO:
    params = {"learning_rate": 0.1, "group_size": 8, "n_groups": 16, "seed": 0, "device": "cpu"}
    params.update(kwargs)
    return GRPO("tabular", env or gym.make("grpo/Bandit-v0"), **params)


def _learn_and_log(model: GRPO, steps: int) -> dict[str, Any]:
    from grpo_agent.common.logger import configure_logger

    model.set_logger(configure_logger(0))
    recorder = _RecordLastValues(model)
    model.learn(steps)
    return recorder.values


@pytest.mark.parametrize("seed", range(5))
def test_grpo_reaches_95_percent_of_optimal_on_bandit(seed: int) -> None:
    env = gym.make("grpo/Bandit-v0")
    model = _model(env, seed=seed)
    start = exact_expected_reward(model.policy, env)
    model.learn(LEARNING_BUDGET)
    final = exact_expected_reward(model.policy, env)
    assert final >= 0.95 * env.unwrapped.optimal_expected_reward, (start, final)
    assert model.num_timesteps == LEARNING_BUDGET
    greedy = [model.predict(s, deterministic=True)[0] for s in range(env.unwrapped.n_states)]
    assert greedy == env.unwrapped.best_actions.tolist()
    mean, _ = evaluate_policy(model, env, n_eval_episodes=20)
    assert mean > 0.9


def test_save_load_round_trips_predictions_and_continued_training(tmp_path: pathlib.Path) -> None:
    env = gym.make("grpo/Bandit-v0", noise_std=0.3)
    model = _model(
        env, n_epochs=2, batch_size=48, kl_target=0.02, baseline_coef=0.5, lr_scheduler_type="cosine",
        clip_range_high=0.28, dynamic_sampling="drop",
    )  # fmt: skip
    model.learn(1024)
    model.save(tmp_path / "agent")
    assert (tmp_path / "agent.zip").exists()
    loaded = GRPO.load(tmp_path / "agent", env=gym.make("grpo/Bandit-v0", noise_std=0.3), device="cpu")

    assert torch.equal(loaded.policy.logits, model.policy.logits)
    states = np.arange(8)
    for deterministic in (True, False):  # stochastic too: the sampler's RNG state was saved
        assert np.array_equal(
            model.predict(states, deterministic=deterministic)[0],
            loaded.predict(states, deterministic=deterministic)[0],
        )
    assert loaded.kl_controller.value == model.kl_controller.value
    assert loaded.task_baseline is not None and loaded.task_baseline.values == model.task_baseline.values  # type: ignore[union-attr]

    model.learn(1024, reset_num_timesteps=False)
    loaded.learn(1024, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps == 2048
    assert torch.equal(loaded.policy.logits, model.policy.logits)
    assert loaded.kl_controller.value == model.kl_controller.value
    assert loaded.optimizer.param_groups[0]["lr"] == model.optimizer.param_groups[0]["lr"]

    # The comparison can fail: a loaded agent whose env RNG is re-seeded diverges.
    other = GRPO.load(tmp_path / "agent", env=gym.make("grpo/Bandit-v0", noise_std=0.3), device="cpu")
    other.env.reset(seed=123)  # type: ignore[union-attr]
    other.learn(1024, reset_num_timesteps=False)
    assert not torch.equal(other.policy.logits, model.policy.logits)


def test_load_without_env_predicts_but_cannot_learn(tmp_path: pathlib.Path) -> None:
    model = _model()
    model.learn(256)
    model.save(tmp_path / "a.zip")
    loaded = GRPO.load(tmp_path / "a.zip")
    assert loaded.predict(3, deterministic=True)[0] == model.predict(3, deterministic=True)[0]
    with pytest.raises(ValueError, match="set_env"):
        loaded.learn(128)
    with pytest.raises(ValueError, match="spaces"):
        loaded.set_env(gym.make("grpo/Bandit-v0", n_actions=3))
    with pytest.raises(FileNotFoundError):
        GRPO.load(tmp_path / "missing")


def test_clipping_binds_only_with_several_epochs_or_minibatches() -> None:
    on_policy = _learn_and_log(_model(learning_rate=0.3), 128)
    assert on_policy["train/clip_fraction_low"] == 0 and on_policy["train/clip_fraction_high"] == 0
    assert on_policy["train/approx_kl"] == 0
    off_policy = _learn_and_log(_model(learning_rate=0.3, n_epochs=4, batch_size=32), 128)
    assert off_policy["train/clip_fraction_low"] + off_policy["train/clip_fraction_high"] > 0
    assert off_policy["train/approx_kl"] > 0
    assert off_policy["train/n_updates"] == 4 * 4


def _peaked_env_model(**kwargs: Any) -> GRPO:
    # Noise-free rewards and a nearly deterministic policy: most groups have zero std.
    env = ContextualBanditEnv(n_states=4, n_actions=3, noise_std=0.0)
    logits = np.zeros((4, 3))
    logits[:, 0] = 4.0
    return _model(env, group_size=4, n_groups=8, policy_kwargs={"initial_logits": logits}, **kwargs)


def test_dynamic_sampling_drops_or_resamples_zero_std_groups() -> None:
    kept = _learn_and_log(_peaked_env_model(learning_rate=0.0), 32)
    assert kept["rollout/frac_zero_std"] > 0.3 and kept["rollout/groups_trained"] == 8

    dropped = _learn_and_log(_peaked_env_model(learning_rate=0.0, dynamic_sampling="drop"), 32)
    assert dropped["rollout/frac_zero_std"] > 0.3
    assert dropped["rollout/groups_trained"] == round(8 * (1 - dropped["rollout/frac_zero_std"]))

    model = _peaked_env_model(learning_rate=0.0, dynamic_sampling="resample", max_resample_rounds=50)
    resampled = _learn_and_log(model, 32)
    assert resampled["rollout/groups_trained"] == 8
    assert model.rollout_buffer.group_zero_std().sum() == 0
    assert model.num_timesteps > 32  # the extra draws are counted as env steps


class _TwoComponentReward(gym.Wrapper):
    """Adds a constant 'format' component next to the bandit reward ('accuracy')."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward_components"] = {"accuracy": reward, "format": 1.0}
        return obs, reward, terminated, truncated, info


def test_multi_objective_rewards_are_combined_with_weights() -> None:
    env = _TwoComponentReward(ContextualBanditEnv(noise_std=0.0))
    model = _model(env, reward_weights={"accuracy": 2.0, "format": 0.5})
    values = _learn_and_log(model, 128)
    buffer = model.rollout_buffer
    acc = np.concatenate(buffer.reward_components["accuracy"])
    np.testing.assert_allclose(buffer.rewards.reshape(-1).numpy(), 2.0 * acc + 0.5)
    assert values["rollout/reward_format"] == 1.0
    assert values["rollout/reward_accuracy"] == pytest.approx(acc.mean())

    with pytest.raises(ValueError, match="no weight"):
        _model(env, reward_weights={"accuracy": 1.0}).learn(128)
    with pytest.raises(ValueError, match="reward_components"):
        _model(reward_weights={"accuracy": 1.0}).learn(128)


@pytest.mark.parametrize(("target", "grows"), [(1e-5, True), (10.0, False)])
def test_adaptive_beta_moves_towards_the_kl_target(target: float, grows: bool) -> None:
    model = _model(beta=0.04, kl_target=target, kl_horizon=1000)
    model.learn(1024)
    assert (model.kl_controller.value > 0.04) == grows


def test_learning_rate_schedules_reach_the_optimiser() -> None:
    cosine = _model(lr_scheduler_type="cosine")
    cosine.learn(1024)
    assert cosine.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    constant = _model()
    constant.learn(256)
    assert constant.optimizer.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        _model(lr_scheduler_type="step")


def test_arguments_are_checked_and_trl_names_accepted() -> None:
    model = _model(num_generations=4, epsilon=0.1, epsilon_high=0.3, num_iterations=2)
    assert (model.group_size, model.clip_range, model.clip_range_high, model.n_epochs) == (4, 0.1, 0.3, 2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        _model(num_generationz=4)
    for bad in ({"loss_type": "gspo"}, {"scale_rewards": "std"}, {"kl_estimator": "k4"}, {"dynamic_sampling": "skip"}):
        with pytest.raises(ValueError, match="not supported"):
            _model(**bad)
    with pytest.raises(ValueError, match="group_size >= 2"):
        _model(group_size=1)
    with pytest.raises(ValueError, match="init_beta"):
        _model(beta=0.0, kl_target=0.1)


class _NoTaskId(gym.Wrapper):
    def reset(self, **kwargs: Any) -> Any:
        obs, _ = self.env.reset(**kwargs)
        return obs, {}


def test_env_without_task_ids_is_rejected_with_advice() -> None:
    with pytest.raises(ValueError, match="task_id"):
        _model(_NoTaskId(ContextualBanditEnv())).learn(128)


def test_seeded_runs_are_reproducible() -> None:
    a, b = _model(seed=5), _model(seed=5)
    a.learn(512)
    b.learn(512)
    assert torch.equal(a.policy.logits, b.policy.logits)
    c = _model(seed=6)
    c.learn(512)
    assert not torch.equal(a.policy.logits, c.policy.logits)


class _TruncatingPolicy(TabularPolicy):
    """Marks every completion of action 0 as truncated (as if it hit the length limit)."""

    def sample(self, observations: Any, n: int = 1, deterministic: bool = False) -> Any:
        batch = super().sample(observations, n, deterministic)
        batch.truncated = batch.token_ids[:, 0] == 0
        return batch


@pytest.mark.parametrize("mask_truncated", [False, True])
def test_mask_truncated_completions_leaves_them_out_of_the_update(mask_truncated: bool) -> None:
    env = ContextualBanditEnv(n_states=1, n_actions=3, noise_std=0.0)
    model = GRPO(
        _TruncatingPolicy, env, learning_rate=0.0, group_size=8, n_groups=4, beta=0.0, max_grad_norm=None,
        mask_truncated_completions=mask_truncated, seed=0, device="cpu",
    )  # fmt: skip
    model.learn(32)
    grad = model.policy.logits.grad
    assert grad is not None
    truncated = model.rollout_buffer.completions.truncated
    assert 0 < int(truncated.sum()) < 32
    # With masking, the update is REINFORCE over the untruncated completions only.
    policy, buffer = model.policy, model.rollout_buffer
    probs = torch.from_numpy(policy.action_probs()[0])
    keep = ~truncated if mask_truncated else torch.ones_like(truncated)
    actions = torch.tensor(buffer.completions.actions)
    onehot = torch.nn.functional.one_hot(actions, 3).double()
    expected = -((onehot - probs) * buffer.advantages.unsqueeze(1) * keep.unsqueeze(1)).sum(0) / 32  # type: ignore[union-attr]
    torch.testing.assert_close(grad[0].double(), expected, atol=1e-6, rtol=0)


def test_sample_efficiency_benchmark_smoke() -> None:
    import importlib.util

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bandit_sample_efficiency.py"
    spec = importlib.util.spec_from_file_location("bandit_sample_efficiency", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    grpo_name, ppo_name = next(iter(bench.AGENTS)), list(bench.AGENTS)[-1]
    grpo = bench.run_one(grpo_name, seed=0, max_steps=LEARNING_BUDGET, threshold=0.95, env_kwargs={})
    assert grpo.samples_to_threshold is not None and grpo.samples_to_threshold <= LEARNING_BUDGET
    assert grpo.curve[0][0] == 0 and grpo.curve[-1][1] >= 0.95
    ppo = bench.run_one(ppo_name, seed=0, max_steps=256, threshold=0.95, env_kwargs={})
    assert ppo.samples_to_threshold is None and [s for s, _ in ppo.curve] == [0, 128, 256]
