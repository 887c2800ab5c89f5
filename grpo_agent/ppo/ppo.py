"""PPO with a critic: the classic RLHF baseline GRPO is compared against.

One iteration: draw ``n_steps`` prompts, sample one completion each, score it with the env,
and build per-token rewards as RLHF does (Ziegler et al. 2019, arXiv:1909.08593; Ouyang et
al. 2022, "InstructGPT"): every policy token pays the KL penalty ``-beta * (log pi - log
pi_ref)``, and the last token also receives the env's reward. A critic gives a value per
token; generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438) turns
rewards and values into per-token advantages and returns; then ``n_epochs`` passes of
minibatch steps on the clipped surrogate (Schulman et al. 2017) plus the clipped value loss.

The same algorithm runs on :class:`~grpo_agent.policies.tabular.TabularPolicy`, where a
completion is one token and the critic a value per state (``A = r - beta * KL - V(s)``), so
GRPO and PPO can be compared on ``grpo/Bandit-v0`` with exactly computable rewards.

Compared with :class:`~grpo_agent.grpo.GRPO`: no groups (one completion per prompt), a
learned baseline instead of the group mean, and a critic to hold in memory and train.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, ClassVar, cast

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from grpo_agent.common import distributed
from grpo_agent.common.base_class import BaseAlgorithm, RewardBackend
from grpo_agent.common.buffers import RolloutBuffer
from grpo_agent.common.losses import KLEstimator, clipped_surrogate, kl_penalty, masked_mean
from grpo_agent.common.rollout import score_completions
from grpo_agent.common.rollout_correction import DEFAULT_CORRECTION_CAP, RolloutCorrection
from grpo_agent.common.schedules import Schedule, SchedulerType
from grpo_agent.engines import GenerationBackend, RolloutEngine
from grpo_agent.engines.vllm_support import DEFAULT_GPU_MEMORY_UTILIZATION
from grpo_agent.policies import BasePolicy, CompletionBatch, sharding
from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.ppo.critic import CRITIC_LAYOUTS, CriticLayout, LMCritic, TabularCritic, make_critic


def token_gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over each row's masked-in tokens.

    Positions where ``mask`` is False (padding, environment tokens) are skipped: the next
    policy token's value bootstraps across them, and the episode ends after the last one
    (its successor's value is 0).

    :param rewards: ``(B, T)`` per-token rewards.
    :param values: ``(B, T)`` the critic's values ``V(s_t)``.
    :param mask: ``(B, T)`` bool, the policy's tokens.
    :param gamma: discount (1.0: the usual choice for one-episode completions).
    :param lam: GAE's lambda (0.95 as in TRL's PPO).
    :return: ``(advantages, returns)``, both ``(B, T)``, 0 where ``mask`` is False.
    """
    mask = mask.bool()
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in range(values.shape[1] - 1, -1, -1):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        candidate = delta + gamma * lam * running
        here = mask[:, t]
        advantages[:, t] = torch.where(here, candidate, torch.zeros_like(candidate))
        running = torch.where(here, candidate, running)
        next_value = torch.where(here, values[:, t], next_value)
    returns = (advantages + values) * mask
    return advantages, returns


def whiten(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """``(x - mean) / std`` over the masked-in entries (0 elsewhere); in a process group, over
    every process's entries, so that W processes whiten their rollouts as one process would
    whiten the whole batch."""
    mask = mask.bool()
    mean = _masked_mean_everywhere(values, mask)
    var = _masked_mean_everywhere((values - mean) ** 2, mask)
    return torch.where(mask, (values - mean) / torch.sqrt(var + eps), torch.zeros_like(values))


def _masked_mean_everywhere(values: Tensor, mask: Tensor) -> Tensor:
    """:func:`masked_mean` over every process's entries (this process's alone outside a group)."""
    if not distributed.is_distributed():
        return masked_mean(values, mask)
    m = mask.to(values.dtype)
    total = distributed.sum_over_processes(float((values * m).sum()))
    count = distributed.sum_over_processes(float(m.sum()))
    return torch.tensor(total / max(count, 1.0), dtype=values.dtype, device=values.device)


def _token_share(mask: Tensor) -> float:
    """The denominator of a minibatch's token means: its masked-in tokens, and in a process group
    every process's over the number of processes. The gradients are then averaged over the
    processes, so the step is that of the token mean over their whole minibatch whatever each
    process's token count (as one process with the whole batch would take it)."""
    count = float(mask.sum())
    if not distributed.is_distributed():
        return max(count, 1.0)
    return max(distributed.sum_over_processes(count), 1.0) / distributed.world_size()


class PPO(BaseAlgorithm):
    """PPO with a critic and per-token GAE, for :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`
    and :class:`~grpo_agent.policies.tabular.TabularPolicy`.

    Same API as :class:`~grpo_agent.grpo.GRPO`: ``PPO(policy, env, ...)``, ``learn``,
    ``predict``, ``save``/``load``. Names follow TRL's former ``PPOConfig`` where one exists.

    :param policy: a ``CausalLMPolicy`` instance (e.g. ``TinyPolicy(..., env=env)``), a
        ``TabularPolicy`` (Discrete envs such as ``grpo/Bandit-v0``), or a registered policy
        name (``"tiny"``, ``"tabular"``) / class with ``policy_kwargs``.
    :param env: a one-step text env whose ``reset`` returns ``info["task_id"]``, or its id.
    :param learning_rate: peak learning rate of policy and critic.
    :param n_steps: completions per rollout (one per prompt); GRPO's ``n_groups * group_size``
        for the same sample budget.
    :param n_epochs: passes over each rollout (TRL ``num_ppo_epochs``).
    :param batch_size: completions per gradient step (None: the whole rollout).
    :param gamma: discount over the completion's tokens.
    :param gae_lambda: GAE's lambda (TRL ``lam``).
    :param clip_range: policy ratio clipping (TRL ``cliprange``).
    :param clip_range_vf: value clipping around the rollout's values (TRL ``cliprange_value``; None: off).
    :param vf_coef: weight of the value loss (TRL 0.1).
    :param beta: KL penalty coefficient inside the reward (TRL ``kl_coef``, 0.05).
    :param kl_estimator: per-token KL estimate used in the reward (``"k1"``, the classic choice).
    :param whiten_advantages: normalise advantages over the rollout's tokens.
    :param critic: ``"separate"`` (own transformer, default; a value table for a tabular
        policy) or ``"shared"`` (value head on the language model's hidden states).
    :param lr_scheduler_type: ``"constant"``, ``"linear"`` or ``"cosine"``.
    :param warmup_ratio: linear warm-up fraction.
    :param max_grad_norm: gradient-norm clipping over policy and critic (None: off).
    :param optimizer_class: torch optimiser (AdamW).
    :param optimizer_kwargs: its extra arguments.
    :param policy_kwargs: the policy constructor's arguments.
    :param tensorboard_log: folder for TensorBoard + CSV logs.
    :param seed: seed of every RNG involved.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``.
    :param verbose: 1 prints the metrics after every update.
    :param reward_workers: score each rollout in this many worker processes, each with its own
        env copy (0: in this process; see :class:`~grpo_agent.common.reward_workers.RewardWorkerPool`).
    :param reward_backend: ``"processes"`` or ``"ray"`` (Ray actors; see GRPO).
    :param ray_address: the Ray cluster to join (None: ``RAY_ADDRESS``, else a local one).
    :param generation_backend: ``"hf"`` (the policy's own sampler) or ``"vllm"`` (a vLLM engine
        colocated in this process, its weights synced before every rollout); see
        :class:`~grpo_agent.common.base_class.BaseAlgorithm` and docs/lm.md.
    :param vllm_gpu_memory_utilization: the vLLM engine's share of the GPU's memory (of RAM on CPU).
    :param rollout_correction: truncated (or masked) importance sampling for the engine/trainer
        log-prob mismatch, per ``"token_*"`` or ``"sequence_*"`` (TRL's modes); None: none.
    :param rollout_correction_cap: the ratio's cap (TRL's default 3).
    :param fsdp: in a process group of several processes, shard the policy and the critic with
        this :class:`~grpo_agent.policies.sharding.ShardingPlan` (FSDP2; see :meth:`LMCritic.shard`).

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> from grpo_agent.ppo import PPO
        >>> from grpo_agent.policies.tiny import TinyPolicy
        >>> env = gym.make("grpo/Math-v0", levels=1)
        >>> policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, max_new_tokens=4)
        >>> model = PPO(policy, env, learning_rate=1e-3, n_steps=8, seed=0).learn(total_timesteps=8)
        >>> model.num_timesteps
        8
    """

    tb_log_name: ClassVar[str] = "PPO"

    def __init__(
        self,
        policy: str | type[BasePolicy] | BasePolicy,
        env: gym.Env | str | None,
        learning_rate: float | Schedule = 1e-6,
        n_steps: int = 64,
        n_epochs: int = 1,
        batch_size: int | None = None,
        gamma: float = 1.0,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        clip_range_vf: float | None = 0.2,
        vf_coef: float = 0.1,
        beta: float = 0.05,
        kl_estimator: KLEstimator = "k1",
        whiten_advantages: bool = True,
        critic: CriticLayout = "separate",
        lr_scheduler_type: SchedulerType = "constant",
        warmup_ratio: float = 0.0,
        max_grad_norm: float | None = 1.0,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
        optimizer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        seed: int | None = None,
        device: torch.device | str = "auto",
        verbose: int = 0,
        reward_workers: int = 0,
        reward_backend: RewardBackend = "processes",
        ray_address: str | None = None,
        generation_backend: GenerationBackend | RolloutEngine = "hf",
        vllm_gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
        rollout_correction: RolloutCorrection | None = "token_truncate",
        rollout_correction_cap: float = DEFAULT_CORRECTION_CAP,
        fsdp: sharding.ShardingPlan | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate, lr_scheduler_type, warmup_ratio, max_grad_norm, optimizer_class,
            optimizer_kwargs, policy_kwargs, tensorboard_log, seed, device, verbose, reward_workers,
            fsdp=fsdp, reward_backend=reward_backend, ray_address=ray_address,
            generation_backend=generation_backend, vllm_gpu_memory_utilization=vllm_gpu_memory_utilization,
            rollout_correction=rollout_correction, rollout_correction_cap=rollout_correction_cap,
        )  # fmt: skip
        if n_steps < 1 or n_epochs < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError(
                "need n_steps >= 1, n_epochs >= 1 and batch_size >= 1 (or None); "
                f"got {n_steps}, {n_epochs}, {batch_size}"
            )
        if critic not in CRITIC_LAYOUTS:
            raise ValueError(f"critic={critic!r} is not supported; choose one of {CRITIC_LAYOUTS}")
        if not 0.0 <= gamma <= 1.0 or not 0.0 <= gae_lambda <= 1.0:
            raise ValueError(f"gamma and gae_lambda must be in [0, 1], got {gamma} and {gae_lambda}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.n_steps, self.n_epochs, self.batch_size = n_steps, n_epochs, batch_size
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.clip_range, self.clip_range_vf, self.vf_coef = clip_range, clip_range_vf, vf_coef
        self.beta, self.kl_estimator, self.whiten_advantages = beta, kl_estimator, whiten_advantages
        self.critic_layout = critic
        if _init_setup_model:
            self._setup_model()
            self.set_random_seed(seed)

    def _setup_model(self) -> None:
        self._setup_policy_and_optimizer()  # builds the critic too (_setup_networks_before_sharding)
        # One optimiser, one schedule: the critic's parameters (its shards, under FSDP) are a second group.
        self.optimizer.add_param_group({"params": [p for p in self.critic.parameters() if p.requires_grad]})
        self.rollout_buffer = RolloutBuffer()

    def _setup_networks_before_sharding(self) -> None:
        # The separate critic copies the policy's transformer: it must see whole weights.
        self.critic: LMCritic | TabularCritic = make_critic(self.policy, self.critic_layout).to(self.policy.device)

    def _shard_networks(self, plan: sharding.ShardingPlan) -> None:
        super()._shard_networks(plan)
        self.critic.shard(plan)

    def _optimized_module(self) -> torch.nn.Module:
        # a throwaway container: the names of a sharded checkpoint's optimiser state are
        # "policy.…" and "critic.…" (it owns nothing; policy and critic stay where they are)
        return torch.nn.ModuleDict({"policy": self.policy, "critic": self.critic})

    # -- rollouts --------------------------------------------------------------------------

    def collect_rollouts(self, env: gym.Env, callback: BaseCallback) -> bool:
        """Sample ``n_steps`` completions (one per prompt), score them, and compute per-token
        rewards, values, advantages and returns.

        :return: False when a callback stopped training.
        """
        self.policy.eval()
        self.critic.eval()
        callback.on_rollout_start()
        start = time.perf_counter()
        observations, task_ids = self._draw_tasks(env, self.n_steps)
        with torch.no_grad():
            batch = self._sample(observations, 1)
            ref = self.policy.reference_log_probs(batch) if self.beta > 0 else None
            values = self.critic(self.policy, batch)
        rollout_seconds = time.perf_counter() - start

        start = time.perf_counter()
        scored = score_completions(env, batch.actions, task_ids, self._step_hook(callback), self._reward_pool_for(env))
        if scored is None:
            return False
        scores, infos = scored
        correct = sum(float(info.get("correct", False)) for info in infos)
        reward_seconds = time.perf_counter() - start
        kl = self._add_rollout(batch, scores, ref, values)

        self.logger.record("rollout/reward_mean", float(scores.mean()))
        self.logger.record("rollout/reward_std", float(scores.std()))
        self.logger.record("rollout/correct", correct / len(batch))
        self.logger.record("rollout/completion_length", float(batch.completion_lengths.float().mean()))
        if kl is not None:
            self.logger.record("rollout/kl", float(kl.sum(1).mean()))
        self.logger.record("time/rollout_s", rollout_seconds)
        self.logger.record("time/reward_s", reward_seconds)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _add_rollout(self, batch: CompletionBatch, scores: Any, ref: Tensor | None, values: Tensor) -> Tensor | None:
        """Per-token rewards (the KL penalty on every policy token, the env's ``scores`` on each
        completion's last), GAE and whitening, into the rollout buffer.

        :param ref: the reference log-probs (None: no KL penalty).
        :param values: the critic's ``(B, L)`` values at sampling time.
        :return: the per-token KL (None without ``ref``).
        """
        mask = batch.mask
        token_rewards = torch.zeros_like(batch.log_probs)
        kl = None
        if ref is not None:
            kl = kl_penalty(batch.log_probs, ref, self.kl_estimator) * mask
            token_rewards = token_rewards - self.beta * kl
        # The env's reward lands on each completion's last policy token.
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, positions, torch.full_like(positions, -1)).amax(dim=1)
        has_token = last >= 0
        rows = torch.arange(len(batch), device=mask.device)[has_token]
        token_rewards[rows, last[has_token]] += torch.as_tensor(scores, dtype=token_rewards.dtype, device=mask.device)[
            has_token
        ]
        values = values.to(token_rewards.dtype) * mask
        advantages, returns = token_gae(token_rewards, values, mask, self.gamma, self.gae_lambda)
        if self.whiten_advantages:
            advantages = whiten(advantages, mask)
        self.rollout_buffer.add(batch, values, advantages, returns)
        return kl

    # -- update ----------------------------------------------------------------------------

    def train(self) -> None:
        """``n_epochs`` passes of minibatch steps on the clipped policy and value losses."""
        self.policy.train()
        self.critic.train()
        lr = self._update_learning_rate()
        start = time.perf_counter()
        buffer = self.rollout_buffer
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(self.n_epochs):
            for samples in buffer.get(self.batch_size, self.rng):
                mb = samples.completions
                mask = mb.mask
                if isinstance(self.critic, LMCritic) and self.critic_layout == "shared":
                    policy = cast(CausalLMPolicy, self.policy)  # make_critic allows "shared" for these only
                    logits, out = policy.forward_completions(mb, output_hidden_states=True)
                    values = self.critic.values_from_hidden(out.hidden_states[-1], mb.token_ids.shape[1])
                    scores = policy.log_probs_from_logits(logits, mb)
                else:
                    scores = self.policy.log_probs(mb)
                    values = self.critic(self.policy, mb)
                zero = torch.zeros((), dtype=scores.log_probs.dtype, device=mask.device)
                logp = torch.where(mask, scores.log_probs, zero)
                old = torch.where(mask, mb.log_probs, zero)
                per_token, ratio = clipped_surrogate(logp, old, samples.advantages, self.clip_range)
                if "is_weights" in mb.extras:  # the rollout engine's off-policy correction
                    per_token = per_token * mb.extras["is_weights"]
                share = _token_share(mask)  # token means over every process's minibatch
                policy_loss = (per_token * mask).sum() / share
                ret, old_values = samples.returns, samples.old_values
                if self.clip_range_vf is not None:
                    clipped = old_values + (values - old_values).clamp(-self.clip_range_vf, self.clip_range_vf)
                    value_error = torch.max((values - ret) ** 2, (clipped - ret) ** 2)
                else:
                    value_error = (values - ret) ** 2
                value_loss = 0.5 * (value_error * mask).sum() / share
                loss = policy_loss + self.vf_coef * value_loss
                grad_norm = self._gradient_step(loss, params)
                with torch.no_grad():
                    log_ratio = logp - old
                    stats["loss"].append(loss.item())
                    stats["policy_loss"].append(policy_loss.item())
                    stats["value_loss"].append(value_loss.item())
                    stats["entropy"].append(masked_mean(scores.entropy, mask).item())
                    stats["clip_fraction"].append(
                        masked_mean(((ratio - 1).abs() > self.clip_range).float(), mask).item()
                    )
                    stats["approx_kl"].append(masked_mean(torch.exp(log_ratio) - 1 - log_ratio, mask).item())
                    stats["grad_norm"].append(grad_norm)
        with torch.no_grad():
            assert buffer.returns is not None and buffer.values is not None
            mask = buffer.completions.mask
            residual = masked_mean((buffer.returns - buffer.values) ** 2, mask)
            spread = masked_mean((buffer.returns - masked_mean(buffer.returns, mask)) ** 2, mask)
            stats["explained_variance"].append(float(1 - residual / spread) if spread > 0 else float("nan"))
        self._record_means("train", stats)
        self.logger.record("train/beta", self.beta)
        self.logger.record("train/learning_rate", lr)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("time/update_s", time.perf_counter() - start)

    # -- save / load -----------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        if self.policy.sharding_plan is not None:  # every process gathers, rank 0 receives the full tensors
            return {"critic": sharding.full_state_dict(self.critic)}
        return {"critic": self.critic.state_dict()}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        if "critic" not in state:
            return
        if self.policy.sharding_plan is not None:  # a full state, saved with or without FSDP
            sharding.load_full_state_dict(self.critic, state["critic"])
        else:
            self.critic.load_state_dict(state["critic"])

    def save(self, path: Any, exclude: Any = None) -> None:
        """Save like :meth:`BaseAlgorithm.save`, with the critic's weights (the rollout is not saved)."""
        super().save(path, exclude=set(exclude or ()) | {"critic"})
