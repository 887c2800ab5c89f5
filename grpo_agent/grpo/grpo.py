"""GRPO: Group Relative Policy Optimization (Shao et al. 2024, arXiv:2402.03300).

One iteration: draw ``n_groups`` prompts, sample ``group_size`` completions of each, score
every completion with the env, turn rewards into group-relative advantages, then take
``n_epochs`` passes of minibatch gradient steps on the clipped surrogate plus a KL penalty to
a frozen reference policy. The formulas live in :mod:`grpo_agent.grpo.loss`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, ClassVar, Literal, get_args

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from grpo_agent.common import distributed
from grpo_agent.common.advantages import AdvantageEstimator
from grpo_agent.common.base_class import BaseAlgorithm, RewardBackend
from grpo_agent.common.buffers import GroupRolloutBuffer, RunningTaskBaseline
from grpo_agent.common.deepspeed_support import ZeroPlan
from grpo_agent.common.losses import ImportanceSamplingLevel, high_entropy_mask
from grpo_agent.common.multi_objective import (
    MultiObjectiveAggregation,
    VarianceShareWeights,
    component_terms,
    variance_shares,
)
from grpo_agent.common.multi_turn import MultiTurnCollector, MultiTurnRollout, is_multi_turn
from grpo_agent.common.prompt_samplers import (
    PromptSampler,
    PromptSamplerName,
    UniformPromptSampler,
    make_prompt_sampler,
)
from grpo_agent.common.reward_shaping import overlong_penalty
from grpo_agent.common.rollout import score_completions
from grpo_agent.common.rollout_correction import DEFAULT_CORRECTION_CAP, RolloutCorrection
from grpo_agent.common.schedules import Schedule, SchedulerType
from grpo_agent.common.step_advantages import DEFAULT_STEP_DISCOUNT, anchor_state_advantages, per_token
from grpo_agent.engines import GenerationBackend, RolloutEngine
from grpo_agent.engines.vllm_support import DEFAULT_GPU_MEMORY_UTILIZATION
from grpo_agent.grpo.kl_controller import AdaptiveKLController, FixedKLController
from grpo_agent.grpo.loss import (
    DEFAULT_STD_EPS,
    KLEstimator,
    LossType,
    PolicyLoss,
    ScaleRewards,
    grpo_loss,
    masked_mean,
)
from grpo_agent.policies import BasePolicy, CompletionBatch
from grpo_agent.policies.sharding import ShardingPlan

DynamicSampling = Literal["drop", "resample"] | None


class GRPO(BaseAlgorithm):
    """Group Relative Policy Optimization with a stable-baselines3-style API.

    Names follow TRL's ``GRPOConfig`` where one exists; the TRL spellings ``num_generations``,
    ``epsilon``, ``epsilon_high`` and ``num_iterations`` are accepted as aliases.

    :param policy: ``"tabular"``, another registered policy name, a ``BasePolicy`` class or instance.
    :param env: a one-step env whose ``reset`` returns ``info["task_id"]`` and accepts
        ``options={"task_id": k}`` (every ``grpo/*`` text bandit and ``grpo/Bandit-v0``), or its id.
    :param learning_rate: peak learning rate or a schedule; 1e-6 is TRL's default for language
        models (a tabular policy wants ~0.05).
    :param group_size: completions per prompt, G (TRL ``num_generations``; GRPO paper uses 64,
        TRL defaults to 8).
    :param n_groups: prompts per rollout; a rollout holds ``n_groups * group_size`` completions.
    :param n_epochs: passes over each rollout, mu in the GRPO paper (TRL ``num_iterations``).
    :param batch_size: completions per gradient step (None: the whole rollout in one step).
        With ``n_epochs > 1`` or several minibatches the policy moves away from the sampling
        policy and the clipping binds.
    :param clip_range: eps_low of the clipped ratio (PPO; TRL ``epsilon``).
    :param clip_range_high: eps_high (DAPO's clip-higher; TRL ``epsilon_high``); None = ``clip_range``.
    :param beta: KL coefficient to the reference policy (GRPO paper 0.04; TRL now defaults to
        0.0). With ``beta == 0`` and no ``kl_target`` the reference is never evaluated and
        ``train/kl`` is not logged.
    :param kl_estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (Schulman 2020; GRPO uses k3).
    :param kl_target: if set, beta adapts to keep the per-token KL near this value
        (Ziegler et al. 2019's adaptive controller), starting from ``beta``.
    :param kl_horizon: the adaptive controller's horizon, in completions.
    :param advantage_estimator: ``"grpo"`` (group mean and std), ``"rloo"`` (leave-one-out mean),
        ``"reinforce_plus_plus_baseline"`` (group mean, batch std) or ``"grpo_passk"`` (only the
        best of each group, for pass@k); verl's names, see :mod:`grpo_agent.common.advantages`.
    :param scale_rewards: ``"group"`` (GRPO), ``"batch"`` (REINFORCE++) or ``"none"`` (Dr. GRPO);
        None picks the estimator's own: ``"none"`` for rloo, ``"group"`` otherwise.
    :param std_eps: added to the reward std (TRL: 1e-4).
    :param advantage_clip: clip advantages to ``[-c, c]`` (None: no clipping).
    :param loss_type: ``"grpo"``, ``"bnpo"``, ``"dr_grpo"`` or ``"dapo"`` (TRL names; see
        :func:`grpo_agent.grpo.loss.aggregate_loss`).
    :param mask_truncated_completions: leave completions that hit the length limit out of the
        loss (DAPO's overlong filtering; TRL's name).
    :param policy_loss: ``"clip"`` (PPO's clipped surrogate) or ``"cispo"`` (MiniMax-M1's clipped,
        stop-gradient importance weights on a REINFORCE loss; the weight is capped at
        ``1 + clip_range_high``).
    :param importance_sampling_level: ``"token"`` (GRPO), ``"sequence"`` (GSPO, Zheng et al. 2025:
        one length-normalised ratio per completion, clipped per completion) or
        ``"sequence_token"`` (GSPO-token); TRL's name.
    :param dual_clip: ``c > 1`` bounds the loss of negative-advantage tokens by ``-c * A``
        (dual-clip PPO, Ye et al. 2020; verl ``clip_ratio_c``, typically 3); None: off.
    :param entropy_coef: weight of an entropy bonus in the loss (0: none).
    :param top_entropy_quantile: train only on the tokens whose entropy is in this top quantile
        of the minibatch (Wang et al. 2025, "Beyond the 80/20 rule"; TRL's name; 0.2 in the
        paper); 1.0 trains on every token.
    :param overlong_buffer_len: DAPO's soft overlong punishment: completions longer than
        ``max_completion_length - overlong_buffer_len`` tokens lose up to ``overlong_penalty_factor``
        of reward, linearly (verl's ``overlong_buffer.len``); None: off.
    :param overlong_penalty_factor: the penalty at the length limit (verl's ``penalty_factor``).
    :param reward_weights: weights of named reward components: when the env's step ``info``
        has a dict ``"reward_components"``, the reward is ``sum(w[k] * c[k])`` (TRL's
        ``reward_weights``, by name). None uses the env's reward as is.
    :param multi_objective_aggregation: ``"sum_then_normalize"`` (the weighted sum, then the
        group advantage) or ``"normalize_then_sum"`` (each component normalised in its group, the
        weighted sum divided by its batch std: GDPO; TRL's name); see
        :mod:`grpo_agent.common.multi_objective`. Needs ``reward_weights``.
    :param reward_weight_targets: the share of the advantage variance each component should have
        (positive, summing to 1); the weights then adapt after every rollout to keep the shares
        near these targets (:class:`~grpo_agent.common.multi_objective.VarianceShareWeights`),
        starting from ``reward_weights``. None keeps the weights fixed.
    :param reward_weight_rate: how far the adaptive weights move towards the targets per rollout
        (1: all the way on the rollout just measured).
    :param step_advantage_weight: multi-turn envs: each token of turn ``t`` learns from the
        episode's advantage plus this weight times the turn's step-level advantage, computed
        among the turns of the group's episodes that acted in the same state (GiGPO's anchor
        states, Feng et al. 2025; 1.0 in the paper); see :mod:`grpo_agent.common.step_advantages`.
        0: episode-level advantages only.
    :param step_discount: discount of the step returns the anchor groups compare (GiGPO: 0.95).
    :param prompt_sampler: which prompts go into an update: ``"uniform"`` (the env's draws),
        ``"difficulty"`` (skip tasks whose recent groups were all solved or all failed; a
        curriculum option), ``"similarity"`` (one update's prompts share a level), or a
        :class:`~grpo_agent.common.prompt_samplers.PromptSampler` configured by hand.
    :param dynamic_sampling: what to do with zero-std groups (no learning signal): None keeps
        them (their advantage is 0), ``"drop"`` removes them, ``"resample"`` replaces them
        with new prompts up to ``max_resample_rounds`` times (DAPO's dynamic sampling).
    :param max_resample_rounds: rounds of sampling per rollout with ``"resample"``.
    :param reward_threshold: zero-std groups get the absolute advantage ``r - threshold``
        instead of 0 (see :func:`grpo_agent.grpo.loss.group_advantages`).
    :param baseline_coef: mix a learned per-task baseline (EMA of past group means) into the
        group mean with this weight (0: the plain group mean).
    :param baseline_decay: the learned baseline's EMA decay.
    :param lr_scheduler_type: ``"constant"``, ``"linear"`` or ``"cosine"`` (TRL's name).
    :param warmup_ratio: fraction of training spent warming the learning rate up from 0.
    :param max_grad_norm: gradient-norm clipping (TRL default 1.0; None disables).
    :param optimizer_class: torch optimiser (AdamW, as TRL).
    :param optimizer_kwargs: its extra arguments.
    :param policy_kwargs: the policy constructor's arguments.
    :param tensorboard_log: folder for TensorBoard and CSV logs.
    :param seed: seed of every RNG involved (agent, policy sampler, env).
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``.
    :param verbose: 1 prints the metrics after every ``log_interval`` updates.
    :param reward_workers: score each rollout in this many worker processes, each with its own
        env copy (0: in this process; see :class:`~grpo_agent.common.reward_workers.RewardWorkerPool`).
    :param reward_backend: ``"processes"`` (local worker processes) or ``"ray"`` (Ray actors, on a
        local Ray or a cluster; ``pip install 'grpo-gym[ray]'``) for the ``reward_workers``.
    :param ray_address: the Ray cluster to join (None: ``RAY_ADDRESS``, else a local one).
    :param fsdp: under ``torchrun``/``accelerate launch``, shard the language model and its
        reference over the processes with this :class:`~grpo_agent.policies.sharding.ShardingPlan`
        (FSDP2) instead of a whole copy per process (None: whole copies; see docs/scaling.md).
    :param deepspeed: under ``torchrun``/``accelerate launch``, partition the optimiser's state
        and the gradients over the processes with DeepSpeed ZeRO-1/2 (a
        :class:`~grpo_agent.common.deepspeed_support.ZeroPlan`; weights stay whole; see
        docs/scaling.md). Not with ``fsdp``.
    :param generation_backend: ``"hf"`` (the policy's own sampler) or ``"vllm"`` (a vLLM engine
        colocated in this process, its weights synced before every rollout); see
        :class:`~grpo_agent.common.base_class.BaseAlgorithm` and docs/lm.md.
    :param vllm_gpu_memory_utilization: the vLLM engine's share of the GPU's memory (of RAM on CPU).
    :param rollout_correction: truncated (or masked) importance sampling for the engine/trainer
        log-prob mismatch, per ``"token_*"`` or ``"sequence_*"`` (TRL's modes); None: none.
    :param rollout_correction_cap: the ratio's cap (TRL's default 3).

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> from grpo_agent import GRPO
        >>> env = gym.make("grpo/Bandit-v0")
        >>> model = GRPO("tabular", env, learning_rate=0.05, group_size=8, n_groups=16, seed=0)
        >>> model = model.learn(total_timesteps=4096)
        >>> action, _ = model.predict(0, deterministic=True)
        >>> bool(action == env.unwrapped.best_actions[0])
        True
    """

    tb_log_name: ClassVar[str] = "GRPO"
    _TRL_ALIASES: ClassVar[dict[str, str]] = {
        "num_generations": "group_size",
        "epsilon": "clip_range",
        "epsilon_high": "clip_range_high",
        "num_iterations": "n_epochs",
    }

    def __init__(
        self,
        policy: str | type[BasePolicy] | BasePolicy,
        env: gym.Env | str | None,
        learning_rate: float | Schedule = 1e-6,
        group_size: int = 8,
        n_groups: int = 16,
        n_epochs: int = 1,
        batch_size: int | None = None,
        clip_range: float = 0.2,
        clip_range_high: float | None = None,
        beta: float = 0.04,
        kl_estimator: KLEstimator = "k3",
        kl_target: float | None = None,
        kl_horizon: int = 10_000,
        advantage_estimator: AdvantageEstimator = "grpo",
        scale_rewards: ScaleRewards | None = None,
        std_eps: float = DEFAULT_STD_EPS,
        advantage_clip: float | None = None,
        loss_type: LossType = "grpo",
        mask_truncated_completions: bool = False,
        policy_loss: PolicyLoss = "clip",
        importance_sampling_level: ImportanceSamplingLevel = "token",
        dual_clip: float | None = None,
        entropy_coef: float = 0.0,
        top_entropy_quantile: float = 1.0,
        overlong_buffer_len: int | None = None,
        overlong_penalty_factor: float = 1.0,
        reward_weights: dict[str, float] | None = None,
        multi_objective_aggregation: MultiObjectiveAggregation = "sum_then_normalize",
        reward_weight_targets: dict[str, float] | None = None,
        reward_weight_rate: float = 0.5,
        step_advantage_weight: float = 0.0,
        step_discount: float = DEFAULT_STEP_DISCOUNT,
        prompt_sampler: PromptSamplerName | PromptSampler = "uniform",
        dynamic_sampling: DynamicSampling = None,
        max_resample_rounds: int = 4,
        reward_threshold: float | None = None,
        baseline_coef: float = 0.0,
        baseline_decay: float = 0.9,
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
        fsdp: ShardingPlan | None = None,
        reward_backend: RewardBackend = "processes",
        ray_address: str | None = None,
        generation_backend: GenerationBackend | RolloutEngine = "hf",
        vllm_gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
        rollout_correction: RolloutCorrection | None = "token_truncate",
        rollout_correction_cap: float = DEFAULT_CORRECTION_CAP,
        deepspeed: ZeroPlan | None = None,
        _init_setup_model: bool = True,
        **trl_aliases: Any,
    ) -> None:
        named: dict[str, Any] = {
            "group_size": group_size,
            "clip_range": clip_range,
            "clip_range_high": clip_range_high,
            "n_epochs": n_epochs,
        }
        for alias, value in trl_aliases.items():
            if alias not in self._TRL_ALIASES:
                raise TypeError(f"GRPO got an unexpected keyword argument {alias!r}")
            named[self._TRL_ALIASES[alias]] = value
        group_size, clip_range = named["group_size"], named["clip_range"]
        clip_range_high, n_epochs = named["clip_range_high"], named["n_epochs"]
        super().__init__(
            policy, env, learning_rate, lr_scheduler_type, warmup_ratio, max_grad_norm, optimizer_class,
            optimizer_kwargs, policy_kwargs, tensorboard_log, seed, device, verbose, reward_workers, fsdp,
            reward_backend, ray_address,
            generation_backend=generation_backend, vllm_gpu_memory_utilization=vllm_gpu_memory_utilization,
            rollout_correction=rollout_correction, rollout_correction_cap=rollout_correction_cap,
            deepspeed=deepspeed,
        )  # fmt: skip
        if scale_rewards is None:
            scale_rewards = "none" if advantage_estimator == "rloo" else "group"
        for name, value, choices in (
            ("loss_type", loss_type, get_args(LossType)),
            ("advantage_estimator", advantage_estimator, get_args(AdvantageEstimator)),
            ("policy_loss", policy_loss, get_args(PolicyLoss)),
            ("importance_sampling_level", importance_sampling_level, get_args(ImportanceSamplingLevel)),
            ("scale_rewards", scale_rewards, get_args(ScaleRewards)),
            ("kl_estimator", kl_estimator, get_args(KLEstimator)),
            ("dynamic_sampling", dynamic_sampling, (None, "drop", "resample")),
            ("multi_objective_aggregation", multi_objective_aggregation, get_args(MultiObjectiveAggregation)),
        ):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not supported; choose one of {choices}")
        if group_size < 2 or n_groups < 1 or n_epochs < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError(
                f"need group_size >= 2, n_groups >= 1, n_epochs >= 1 and batch_size >= 1 (or None); got "
                f"{group_size}, {n_groups}, {n_epochs}, {batch_size}"
            )
        self.group_size, self.n_groups, self.n_epochs, self.batch_size = group_size, n_groups, n_epochs, batch_size
        self.clip_range, self.clip_range_high = clip_range, clip_range_high
        self.beta, self.kl_estimator, self.kl_target, self.kl_horizon = beta, kl_estimator, kl_target, kl_horizon
        self.scale_rewards, self.std_eps, self.advantage_clip = scale_rewards, std_eps, advantage_clip
        self.loss_type, self.mask_truncated_completions = loss_type, mask_truncated_completions
        if advantage_estimator == "reinforce_plus_plus_baseline" and scale_rewards != "group":
            raise ValueError(
                "advantage_estimator='reinforce_plus_plus_baseline' scales by the batch std itself; drop scale_rewards"
            )
        if dual_clip is not None and dual_clip <= 1:
            raise ValueError(f"dual_clip must be > 1 (verl's clip_ratio_c, typically 3), got {dual_clip}")
        if not 0 < top_entropy_quantile <= 1:
            raise ValueError(f"top_entropy_quantile must be in (0, 1], got {top_entropy_quantile}")
        if (
            entropy_coef < 0
            or overlong_penalty_factor < 0
            or (overlong_buffer_len is not None and overlong_buffer_len < 1)
        ):
            raise ValueError(
                "need entropy_coef >= 0, overlong_penalty_factor >= 0 and overlong_buffer_len >= 1 (or None); got "
                f"{entropy_coef}, {overlong_penalty_factor}, {overlong_buffer_len}"
            )
        self.advantage_estimator, self.policy_loss = advantage_estimator, policy_loss
        self.importance_sampling_level, self.dual_clip = importance_sampling_level, dual_clip
        self.entropy_coef, self.top_entropy_quantile = entropy_coef, top_entropy_quantile
        self.overlong_buffer_len, self.overlong_penalty_factor = overlong_buffer_len, overlong_penalty_factor
        self.reward_weights = None if reward_weights is None else dict(reward_weights)
        self.multi_objective_aggregation = multi_objective_aggregation
        if step_advantage_weight < 0 or not 0 <= step_discount <= 1:
            raise ValueError(
                f"need step_advantage_weight >= 0 and step_discount in [0, 1]; got {step_advantage_weight}, "
                f"{step_discount}"
            )
        if step_advantage_weight > 0 and self.env is not None and not is_multi_turn(self.env):
            raise ValueError(
                "step_advantage_weight compares the turns of multi-turn episodes (unwrapped.max_turns > 1); "
                "this env's episodes have one step: leave it at 0"
            )
        self.step_advantage_weight, self.step_discount = step_advantage_weight, step_discount
        self.reward_weight_targets = None if reward_weight_targets is None else dict(reward_weight_targets)
        self.reward_weight_rate = reward_weight_rate
        if (multi_objective_aggregation != "sum_then_normalize" or reward_weight_targets is not None) and (
            reward_weights is None
        ):
            raise ValueError(
                "multi_objective_aggregation='normalize_then_sum' and reward_weight_targets weigh named reward "
                "components: set reward_weights too (e.g. {'correct': 1.0, 'format': 1.0})"
            )
        if multi_objective_aggregation == "normalize_then_sum" and (
            advantage_estimator != "grpo" or reward_threshold is not None or baseline_coef > 0
        ):
            raise ValueError(
                "multi_objective_aggregation='normalize_then_sum' computes its own advantages: use it with "
                "advantage_estimator='grpo' and without reward_threshold or baseline_coef"
            )
        self.prompt_sampler = make_prompt_sampler(prompt_sampler)
        self.dynamic_sampling, self.max_resample_rounds = dynamic_sampling, max_resample_rounds
        self.reward_threshold = reward_threshold
        self.baseline_coef, self.baseline_decay = baseline_coef, baseline_decay
        # Training state that save() pickles with the hyperparameters.
        self.kl_controller: FixedKLController | AdaptiveKLController = (
            FixedKLController(beta) if kl_target is None else AdaptiveKLController(beta, kl_target, kl_horizon)
        )
        self.task_baseline = RunningTaskBaseline(baseline_decay) if baseline_coef > 0 else None
        self.adaptive_reward_weights = (
            VarianceShareWeights(reward_weights, reward_weight_targets, reward_weight_rate)
            if reward_weights is not None and reward_weight_targets is not None
            else None
        )
        # What the last rollout measured, logged at its end: seconds per phase, means of info entries.
        self._timings: dict[str, float] = {"rollout": 0.0, "reward": 0.0}
        self._info_means: dict[str, float] = {}
        if _init_setup_model:
            self._setup_model()
            self.set_random_seed(seed)

    def _setup_model(self) -> None:
        self._setup_policy_and_optimizer()
        self.rollout_buffer = GroupRolloutBuffer(self.group_size, self.device)
        self.multi_turn_collector = MultiTurnCollector()

    @property
    def _needs_reference(self) -> bool:
        return self.beta > 0 or self.kl_target is not None

    # -- rollouts --------------------------------------------------------------------------

    def collect_rollouts(self, env: gym.Env, callback: BaseCallback) -> bool:
        """Fill :attr:`rollout_buffer` with ``n_groups`` groups and compute their advantages.

        :return: False when a callback stopped training (the partial rollout is discarded).
        """
        buffer = self.rollout_buffer
        buffer.reset()
        self.policy.eval()
        callback.on_rollout_start()
        self._timings = {"rollout": 0.0, "reward": 0.0}
        all_rewards: list[np.ndarray] = []
        n_zero_std = n_drawn = 0
        for _ in range(self.max_resample_rounds if self.dynamic_sampling == "resample" else 1):
            start = time.perf_counter()
            observations, task_ids = self._draw_tasks(env, self.n_groups - buffer.n_groups)
            self._timings["rollout"] += time.perf_counter() - start
            result = self._rollout_groups(env, observations, task_ids, callback)
            if result is None:
                return False
            completions, rewards, ref, components, step = result
            buffer.add(observations, task_ids, completions, rewards, ref, components, step)
            grouped = rewards.reshape(-1, self.group_size)
            self.prompt_sampler.update(task_ids, grouped)
            all_rewards.append(rewards)
            n_drawn += len(grouped)
            n_zero_std += int((grouped.max(axis=1) == grouped.min(axis=1)).sum())
            if self.dynamic_sampling is not None:
                buffer.keep_groups(~buffer.group_zero_std())
            if buffer.n_groups >= self.n_groups:
                break
        if len(buffer):
            buffer.compute_advantages(
                self.scale_rewards, self.std_eps, self.advantage_clip, self.reward_threshold,
                self.task_baseline, self.baseline_coef, self.advantage_estimator,
                self.multi_objective_aggregation, self.current_reward_weights,
            )  # fmt: skip
            self._log_reward_weights(buffer)

        rewards = np.concatenate(all_rewards)
        self.logger.record("rollout/reward_mean", float(rewards.mean()))
        self.logger.record("rollout/reward_std", float(rewards.std()))
        self.logger.record("rollout/frac_zero_std", n_zero_std / max(n_drawn, 1))
        self.logger.record("rollout/groups_trained", buffer.n_groups)
        if not isinstance(self.prompt_sampler, UniformPromptSampler):
            self.logger.record("rollout/prompts_filled", self.prompt_sampler.last_stats.get("filled", 0))
        for name, value in self._info_means.items():
            self.logger.record(f"rollout/{name}", value)
        self.logger.record("time/rollout_s", self._timings["rollout"])
        self.logger.record("time/reward_s", self._timings["reward"])
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    @property
    def current_reward_weights(self) -> dict[str, float] | None:
        """The weights the next rollout is scored with: ``reward_weights``, or their adapted values."""
        if self.adaptive_reward_weights is not None:
            return dict(self.adaptive_reward_weights.weights)
        return self.reward_weights

    def _log_reward_weights(self, buffer: GroupRolloutBuffer) -> None:
        """Log each component's weight and share of the advantage variance in this rollout, then
        let the adaptive weights (if any) move for the next one."""
        weights = self.current_reward_weights
        if weights is None:
            return
        names = list(weights)
        terms = component_terms(
            buffer.components(names),
            torch.tensor([weights[k] for k in names], dtype=torch.float64),
            self.multi_objective_aggregation,
            self.std_eps,
        )
        if self.adaptive_reward_weights is not None:
            # every process moves its weights by the whole batch, so they stay equal across processes
            shares = self.adaptive_reward_weights.update(distributed.gather_rows(terms)[0])
        else:
            shares = dict(zip(names, variance_shares(terms).tolist()))
        for name in names:
            self.logger.record(f"rollout/reward_weight_{name}", weights[name])
            self.logger.record(f"rollout/advantage_share_{name}", shares[name])

    def _draw_tasks(self, env: gym.Env, n: int) -> tuple[list[Any], list[Any]]:
        """``n`` prompts chosen by :attr:`prompt_sampler`, with their task ids."""
        return self.prompt_sampler.draw(self._reset_env, n, type(self).__name__)

    def _rollout_groups(
        self, env: gym.Env, observations: list[Any], task_ids: list[Any], callback: BaseCallback
    ) -> tuple[CompletionBatch, np.ndarray, torch.Tensor | None, dict[str, np.ndarray], torch.Tensor | None] | None:
        """Sample ``group_size`` completions per prompt and score each one.

        One-step envs score a completion with one env step; multi-turn envs play each
        completion as an episode (:class:`~grpo_agent.common.multi_turn.MultiTurnCollector`),
        whose env-inserted tokens are masked out of the loss.

        :return: ``(completions, rewards, reference log-probs, reward components, weighted
            step-level advantages or None)``, or None when a callback stopped training.
        """
        start = time.perf_counter()
        info_means: dict[str, float] = {}
        step: torch.Tensor | None = None
        multi_turn = is_multi_turn(env) and hasattr(self.policy, "continue_turn")
        if multi_turn and self.generation_backend != "hf":
            raise ValueError(
                f"multi-turn episodes are sampled by the policy itself: train {env.spec.id if env.spec else env} "
                f"with generation_backend='hf' (got {self.generation_backend!r})"
            )
        with torch.no_grad():
            if multi_turn:
                episodes = self.multi_turn_collector.collect(
                    self.policy, env, observations, task_ids, self.group_size, self._step_hook(callback)
                )
                if episodes is None:
                    return None
                completions, rewards, infos = episodes.completions, episodes.rewards, episodes.infos
                info_means["turns"] = float(episodes.turns.mean())
                if self.step_advantage_weight > 0:
                    step = self._step_advantages(episodes)
                    own = completions.mask.cpu()
                    info_means["step_advantage_abs"] = float(step[own].abs().mean()) if bool(own.any()) else 0.0
                self._timings["rollout"] += time.perf_counter() - start
            else:
                completions = self._sample(observations, self.group_size)
                self._timings["rollout"] += time.perf_counter() - start
                start = time.perf_counter()
                row_tasks = [task_ids[i // self.group_size] for i in range(len(completions))]
                scored = score_completions(
                    env, completions.actions, row_tasks, self._step_hook(callback), self._reward_pool_for(env)
                )
                if scored is None:
                    return None
                rewards, infos = scored
                self._timings["reward"] += time.perf_counter() - start
            start = time.perf_counter()
            ref = self.policy.reference_log_probs(completions) if self._needs_reference else None
            self._timings["rollout"] += time.perf_counter() - start

        components: dict[str, np.ndarray] = {}
        if not multi_turn:  # an episode's reward is its total; components are a one-step env's
            rewards = np.array(
                [
                    self._combine_reward(float(r), info, components, i, len(infos))
                    for i, (r, info) in enumerate(zip(rewards, infos))
                ]
            )
        if self.overlong_buffer_len is not None:
            penalty = overlong_penalty(
                completions.completion_lengths.cpu().numpy(),
                self.policy.max_completion_length,
                self.overlong_buffer_len,
                self.overlong_penalty_factor,
            )
            rewards = rewards + penalty
            info_means["overlong_penalty"] = float(penalty.mean())
        n = len(completions)
        if multi_turn or any("correct" in info for info in infos):
            info_means["correct"] = sum(float(info.get("correct", False)) for info in infos) / n
        info_means["completion_length"] = float(completions.completion_lengths.float().mean())
        for name, values in components.items():
            info_means[f"reward_{name}"] = float(values.mean())
        self._info_means = info_means
        return completions, rewards, ref, components, step

    def _step_advantages(self, episodes: MultiTurnRollout) -> torch.Tensor:
        """``(rows, T)`` ``step_advantage_weight`` times each token's turn's anchor-state advantage,
        anchor groups formed within each task's group of episodes."""
        g = self.group_size
        values: list[list[float]] = []
        for start in range(0, len(episodes.rewards), g):
            values += anchor_state_advantages(
                episodes.turn_states[start : start + g],
                episodes.turn_rewards[start : start + g],
                self.step_discount,
                self.scale_rewards,
                self.std_eps,
            )
        width = episodes.completions.token_ids.shape[1]
        return self.step_advantage_weight * per_token(episodes.turn_ends, values, width)

    def _combine_reward(
        self, reward: float, info: dict[str, Any], components: dict[str, np.ndarray], row: int, rows: int
    ) -> float:
        """The env reward, or the weighted sum of ``info["reward_components"]``."""
        parts = info.get("reward_components")
        if isinstance(parts, dict):
            for name, value in parts.items():
                components.setdefault(name, np.zeros(rows))[row] = float(value)
        weights = self.current_reward_weights
        if weights is None:
            return reward
        if not isinstance(parts, dict):
            raise ValueError(  # noqa: TRY004 - a missing entry of info, not an argument of the wrong type
                "reward_weights is set but the env's info has no dict 'reward_components'; drop reward_weights"
            )
        missing = set(parts) - set(weights)
        if missing:
            raise ValueError(
                f"reward_weights has no weight for component(s) {sorted(missing)}; add them (0 ignores one)"
            )
        return float(sum(weights[k] * float(v) for k, v in parts.items()))

    # -- update ----------------------------------------------------------------------------

    def train(self) -> None:
        """``n_epochs`` passes of minibatch steps on the GRPO loss over the rollout buffer."""
        self.policy.train()
        lr = self._update_learning_rate()
        buffer = self.rollout_buffer
        start = time.perf_counter()
        stats: dict[str, list[float]] = defaultdict(list)
        if len(buffer):
            # With a single step on fresh samples pi_old == pi: use the detached current log-probs
            # (as TRL does) so the ratio is exactly 1 even if sampling ran in lower precision.
            single_step = self.n_epochs == 1 and (self.batch_size is None or self.batch_size >= len(buffer))
            all_mask = self._loss_mask(buffer.completions)
            # dapo's normaliser counts the tokens of every process's rollout
            tokens_per_completion = distributed.sum_over_processes(float(all_mask.sum())) / (
                distributed.sum_over_processes(float(len(buffer)))
            )
            params = [p for p in self.policy.parameters() if p.requires_grad]
            for _ in range(self.n_epochs):
                for samples in buffer.get(self.batch_size, self.rng):
                    batch = samples.completions
                    mask = self._loss_mask(batch)
                    # Only ask for an entropy gradient when the bonus needs one (it costs memory).
                    scores = (
                        self.policy.log_probs(batch, entropy_grad=True)
                        if self.entropy_coef
                        else self.policy.log_probs(batch)
                    )
                    trained = (
                        high_entropy_mask(scores.entropy, mask, self.top_entropy_quantile)
                        if self.top_entropy_quantile < 1
                        else None
                    )
                    out = grpo_loss(
                        scores.log_probs,
                        scores.log_probs.detach() if single_step else batch.log_probs,
                        samples.advantages.to(scores.log_probs.dtype),
                        mask,
                        samples.ref_log_probs,
                        beta=self.kl_controller.value,
                        clip_range=self.clip_range,
                        clip_range_high=self.clip_range_high,
                        kl_estimator=self.kl_estimator,
                        loss_type=self.loss_type,
                        max_completion_length=self.policy.max_completion_length,
                        num_tokens=tokens_per_completion * len(batch),
                        policy_loss=self.policy_loss,
                        importance_sampling_level=self.importance_sampling_level,
                        dual_clip=self.dual_clip,
                        entropy=scores.entropy,
                        entropy_coef=self.entropy_coef,
                        trained_mask=trained,
                        is_weights=batch.extras.get("is_weights"),
                    )
                    grad_norm = self._gradient_step(out.loss, params)
                    stats["loss"].append(out.loss.item())
                    stats["policy_loss"].append(out.policy_loss.item())
                    if samples.ref_log_probs is not None:
                        stats["kl"].append(out.kl.item())
                    stats["entropy"].append(masked_mean(scores.entropy.detach(), mask).item())
                    stats["clip_fraction_low"].append(out.clip_fraction_low.item())
                    stats["clip_fraction_high"].append(out.clip_fraction_high.item())
                    stats["approx_kl"].append(out.approx_kl.item())
                    stats["grad_norm"].append(grad_norm)
            stats["advantage_std"].append(float(buffer.advantages.std()) if len(buffer) > 1 else 0.0)  # type: ignore[union-attr]

        self._record_means("train", stats)
        kl = float(np.mean(stats["kl"])) if stats["kl"] else float("nan")
        self.logger.record("train/beta", self.kl_controller.value)
        self.kl_controller.update(kl, len(buffer))
        self.logger.record("train/learning_rate", lr)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("time/update_s", time.perf_counter() - start)

    def _loss_mask(self, batch: CompletionBatch) -> torch.Tensor:
        if self.mask_truncated_completions:
            return batch.mask & ~batch.truncated.unsqueeze(1)
        return batch.mask
