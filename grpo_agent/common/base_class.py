"""BaseAlgorithm: what every on-policy agent here shares (GRPO now, the language-model PPO later).

It owns the env, the policy and its optimiser, seeding, the learning-rate schedule, the
logger, callbacks, the ``learn`` loop (collect a rollout, train on it, log) and
``save``/``load``. Subclasses implement :meth:`BaseAlgorithm._setup_model`,
:meth:`BaseAlgorithm.collect_rollouts` and :meth:`BaseAlgorithm.train`.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import time
import weakref
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, TypeVar, get_args

import cloudpickle
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from torch.distributed.tensor import DTensor
from typing_extensions import Self

from grpo_agent.common import distributed
from grpo_agent.common.callbacks import make_callback
from grpo_agent.common.deepspeed_support import ZeroPlan
from grpo_agent.common.logger import configure_logger
from grpo_agent.common.ray_rewards import RayRewardPool
from grpo_agent.common.reward_workers import RewardPool, RewardWorkerPool
from grpo_agent.common.rollout import OnStep, draw_tasks
from grpo_agent.common.rollout_correction import (
    DEFAULT_CORRECTION_CAP,
    RolloutCorrection,
    check_rollout_correction,
    correction_weights,
    logprob_diff,
)
from grpo_agent.common.schedules import Schedule, SchedulerType, make_schedule
from grpo_agent.common.utils import get_device, set_random_seed
from grpo_agent.engines import GenerationBackend, RolloutEngine, check_generation_backend, make_rollout_engine
from grpo_agent.engines.vllm_support import DEFAULT_GPU_MEMORY_UTILIZATION, INSTALL_HINT, vllm_available
from grpo_agent.policies import BasePolicy, CompletionBatch, make_policy
from grpo_agent.policies import sharding as fsdp_sharding
from grpo_agent.policies.sharding import ShardingPlan

SelfBaseAlgorithm = TypeVar("SelfBaseAlgorithm", bound="BaseAlgorithm")

#: Where reward workers run: local processes, or Ray actors.
RewardBackend = Literal["processes", "ray"]

#: Attributes never pickled into ``data.pkl``: rebuilt by ``_setup_model`` or saved as tensors.
_NOT_PICKLED = (
    "env",
    "policy",
    "optimizer",
    "rollout_buffer",
    "_logger",
    "_logger_finalizer",
    "lr_schedule",
    "multi_turn_collector",
    "_reward_pool",
    "_rollout_engine",
    "_deepspeed_engine",
)


def _env_rng(env: gym.Env | None) -> np.random.Generator | None:
    """The env's seeded RNG (``env.np_random`` forwards through wrappers), if it has one."""
    if env is None:
        return None
    try:
        return env.unwrapped.np_random
    except AttributeError:
        return None


def _keyed_by_name(optimizer_state: dict[str, Any]) -> bool:
    """Whether an optimiser state names its parameters (torch.distributed.checkpoint's format)
    rather than numbering them (``Optimizer.state_dict``'s)."""
    return any(isinstance(key, str) for key in optimizer_state.get("state", {}))


class BaseAlgorithm(ABC):
    """The shared machinery of the agents.

    :param policy: a registered policy name (``"tabular"``), a ``BasePolicy`` class, or an instance.
    :param env: a Gymnasium env, or a registered id (``gym.make`` is called). None only when
        loading.
    :param learning_rate: a float, or a schedule ``progress_remaining -> lr`` (1 at the start).
    :param lr_scheduler_type: ``"constant"``, ``"linear"`` or ``"cosine"`` (TRL's name), applied
        when ``learning_rate`` is a float.
    :param warmup_ratio: fraction of training with a linear learning-rate warm-up (TRL's name).
    :param max_grad_norm: clip the global gradient norm to this (None: no clipping).
    :param optimizer_class: the torch optimiser (AdamW, as TRL).
    :param optimizer_kwargs: extra optimiser arguments (AdamW gets ``weight_decay=0.0`` unless given).
    :param policy_kwargs: keyword arguments of the policy's constructor.
    :param tensorboard_log: folder for TensorBoard + CSV logs (None: none).
    :param seed: seeds Python, NumPy, torch, the agent's RNG, the policy's sampler and the
        env's first reset.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``...
    :param verbose: 0 silent, 1 prints the logged metrics.
    :param reward_workers: score each rollout's one-step completions in this many worker
        processes, each with its own copy of the env (0: in this process). Multi-turn episodes
        are always played here.
    :param reward_backend: where the ``reward_workers`` run: ``"processes"`` on this machine, or
        ``"ray"``, Ray actors on a local Ray or a cluster (``pip install 'grpo-gym[ray]'``).
    :param ray_address: the Ray cluster to join when no Ray is running in this process (None:
        ``RAY_ADDRESS``, else a new local one).
    :param fsdp: in a process group of several processes, shard the policy's networks with this
        :class:`~grpo_agent.policies.sharding.ShardingPlan` (FSDP2) instead of keeping a whole
        copy in each process; None (and any single process) keeps them whole.
    :param deepspeed: in a process group of several processes, let DeepSpeed ZeRO (stage 1 or
        2, a :class:`~grpo_agent.common.deepspeed_support.ZeroPlan`) partition the optimiser's
        state (and the gradients) over them and own the backward pass and the step; the weights
        stay whole. Not with ``fsdp``. None (and any single process): no DeepSpeed.
    :param generation_backend: what samples the rollouts (:mod:`grpo_agent.engines`): ``"hf"``
        (the policy's own sampler) or ``"vllm"`` (a vLLM engine in this process, started at the
        first rollout, its weights synced before every rollout); or a ready
        :class:`~grpo_agent.engines.base.RolloutEngine` built on this agent's policy instance.
    :param vllm_gpu_memory_utilization: the share of the GPU's memory the vLLM engine reserves
        (TRL's name and default); on vLLM's CPU build, the share of RAM that this whole process
        (trainer included) may reach, the KV cache getting what is left.
    :param rollout_correction: how an engine whose log-probs differ from the trainer's
        (``"vllm"``) is corrected for: the trainer's forward recomputes the old log-probs
        and each token's policy term is weighted by the importance ratio, truncated or masked
        at ``rollout_correction_cap``, per token or per sequence (``"token_truncate"``,
        ``"token_mask"``, ``"sequence_truncate"``, ``"sequence_mask"``; TRL's
        ``vllm_importance_sampling_mode``, see :mod:`grpo_agent.common.rollout_correction`);
        None recomputes without reweighting.
    :param rollout_correction_cap: the cap C of the ratio (TRL's default 3).
    """

    #: The name under which TensorBoard runs are filed.
    tb_log_name: ClassVar[str] = "run"

    def __init__(
        self,
        policy: str | type[BasePolicy] | BasePolicy,
        env: gym.Env | str | None,
        learning_rate: float | Schedule,
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
        *,
        generation_backend: GenerationBackend | RolloutEngine = "hf",
        vllm_gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
        rollout_correction: RolloutCorrection | None = "token_truncate",
        rollout_correction_cap: float = DEFAULT_CORRECTION_CAP,
        deepspeed: ZeroPlan | None = None,
    ) -> None:
        if reward_workers < 0:
            raise ValueError(f"reward_workers must be >= 0 (0: score in this process), got {reward_workers}")
        if reward_backend not in get_args(RewardBackend):
            raise ValueError(
                f"reward_backend={reward_backend!r} is not supported; choose one of {get_args(RewardBackend)}"
            )
        if reward_backend == "ray" and reward_workers < 1:
            raise ValueError("reward_backend='ray' scores on reward_workers Ray workers: set reward_workers >= 1")
        self.env: gym.Env | None = gym.make(env) if isinstance(env, str) else env
        spaces_from: gym.Env | BasePolicy
        if self.env is not None:
            spaces_from = self.env
        elif isinstance(policy, BasePolicy):
            spaces_from = policy
        else:
            raise ValueError("an env is required to build the policy; pass one (or a ready policy instance)")
        self.observation_space = spaces_from.observation_space
        self.action_space = spaces_from.action_space
        self.policy_spec: str | type[BasePolicy] | BasePolicy = policy
        self.policy_kwargs = dict(policy_kwargs or {})
        self.learning_rate = learning_rate
        self.lr_scheduler_type = lr_scheduler_type
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.optimizer_class = optimizer_class
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        if optimizer_class is torch.optim.AdamW:
            # torch's AdamW decays weights by 0.01 by default; TRL uses 0, and decay towards 0
            # logits would pull a tabular policy back to uniform.
            self.optimizer_kwargs.setdefault("weight_decay", 0.0)
        self.tensorboard_log = tensorboard_log
        self.seed = seed
        self.device = get_device(device)
        self.verbose = verbose
        self.reward_workers = reward_workers
        self.fsdp = fsdp
        if deepspeed is not None and fsdp is not None:
            raise ValueError("fsdp and deepspeed both split the training state: choose one of them")
        self.deepspeed = deepspeed
        self._deepspeed_engine: Any = None
        self.reward_backend = reward_backend
        self.ray_address = ray_address
        self._reward_pool: RewardPool | None = None
        self._rollout_engine: RolloutEngine | None = None
        if isinstance(generation_backend, RolloutEngine):
            self._rollout_engine, generation_backend = generation_backend, generation_backend.name
        check_generation_backend(generation_backend)
        if generation_backend == "vllm" and not vllm_available():
            raise ImportError(INSTALL_HINT)
        if generation_backend == "vllm" and fsdp is not None:
            # The engine reloads whole weights from the policy; FSDP leaves each process a shard,
            # and gathering them into every process's engine is not built yet.
            raise ValueError(
                "generation_backend='vllm' does not run with fsdp yet: use generation_backend='hf' (it samples "
                "on gathered weights) or data-parallel training without fsdp"
            )
        if generation_backend == "vllm" and deepspeed is not None:
            # Untried: the engine would reload the weights from views into DeepSpeed's flat buffer.
            raise ValueError(
                "generation_backend='vllm' does not run with deepspeed yet: use generation_backend='hf' or "
                "data-parallel training without deepspeed"
            )
        if rollout_correction is not None:
            check_rollout_correction(rollout_correction, rollout_correction_cap)
        self.generation_backend: GenerationBackend = generation_backend
        self.vllm_gpu_memory_utilization = vllm_gpu_memory_utilization
        self.rollout_correction, self.rollout_correction_cap = rollout_correction, rollout_correction_cap

        self.num_timesteps = 0
        self._total_timesteps = 0
        self._num_timesteps_at_start = 0
        self._n_updates = 0
        self._current_progress_remaining = 1.0
        self._env_needs_seed = True
        self._custom_logger = False
        self._logger: Logger | None = None
        self._logger_finalizer: weakref.finalize | None = None
        self.rng = np.random.default_rng(seed)
        self.policy: BasePolicy
        self.optimizer: torch.optim.Optimizer

    # -- model set-up ----------------------------------------------------------------------

    def _setup_policy_and_optimizer(self) -> None:
        """Build the policy, move it to the device, and create the optimiser."""
        spec = self.policy_spec
        self.policy = make_policy(spec, self.observation_space, self.action_space, self.env, **self.policy_kwargs).to(
            self.device
        )
        # What load() needs to rebuild the same policy, whatever form `policy` was given in.
        params = self.policy.get_constructor_parameters()
        params.pop("observation_space", None)
        params.pop("action_space", None)
        self.policy_spec, self.policy_kwargs = type(self.policy), params
        self.lr_schedule = make_schedule(self.learning_rate, self.lr_scheduler_type, self.warmup_ratio)
        distributed.broadcast_parameters([*self.policy.parameters(), *self.policy.buffers()])
        self._setup_networks_before_sharding()
        if self.fsdp is not None and distributed.is_distributed():
            self._shard_networks(self.fsdp)  # the optimiser below then holds this process's shards only
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(f"{type(self.policy).__name__} has no trainable parameters")
        optimizer_class: Any = self.optimizer_class  # any torch optimiser; the base class's __init__ takes no lr
        self.optimizer = optimizer_class(trainable, lr=self.lr_schedule(1.0), **self.optimizer_kwargs)
        self._deepspeed_engine = None
        plan = getattr(self, "deepspeed", None)  # agents saved before it had none
        if plan is not None and self.fsdp is not None:  # e.g. load(path_of_a_deepspeed_run, fsdp=...)
            raise ValueError("fsdp and deepspeed both split the training state: choose one of them (the other None)")
        if plan is not None and distributed.is_distributed():
            from grpo_agent.common import deepspeed_support

            # The optimiser above becomes DeepSpeed's client: it steps this process's partition.
            self._deepspeed_engine = deepspeed_support.initialize(self.policy, self.optimizer, plan, self.max_grad_norm)

    @property
    def saves_collectively(self) -> bool:
        """Whether every process must take part in :meth:`save` (rank 0 still writes alone): the
        training state is split over the processes (FSDP's shards, DeepSpeed's partitions)."""
        return self.policy.sharding_plan is not None or self._deepspeed_engine is not None

    def _setup_networks_before_sharding(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Build what trains with the policy and is made from its whole weights (PPO's critic
        copies them), once they are the same in every process and before they are sharded."""

    def _shard_networks(self, plan: ShardingPlan) -> None:
        """Shard every trained network with ``plan`` (the policy; PPO adds its critic)."""
        self.policy.shard(plan)

    def _optimized_module(self) -> torch.nn.Module:
        """The module whose parameters the optimiser steps: a sharded checkpoint keys the
        optimiser's state by their names in it (PPO's holds policy and critic)."""
        return self.policy

    @abstractmethod
    def _setup_model(self) -> None:
        """Create the policy, optimiser, buffers (everything ``save`` does not pickle)."""

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed every RNG the agent uses; the env is seeded at its next reset."""
        if seed is None:
            return
        # Each process of a data-parallel run draws its own tasks and samples (its rank shifts
        # the seed); the weights are the same everywhere (broadcast from rank 0 at set-up).
        local = seed + distributed.rank()
        set_random_seed(local)
        self.rng = np.random.default_rng(local)
        self.policy.seed(local)
        if self.env is not None:
            self.env.action_space.seed(local)
        self._env_needs_seed = True

    # -- learning loop ---------------------------------------------------------------------

    @abstractmethod
    def collect_rollouts(self, env: gym.Env, callback: BaseCallback) -> bool:
        """Fill the rollout buffer; return False if a callback asked to stop."""

    @abstractmethod
    def train(self) -> None:
        """Update the policy on the rollout buffer."""

    def _reset_env(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """``env.reset``, with the agent's seed on the very first reset."""
        assert self.env is not None
        if self._env_needs_seed and self.seed is not None:
            kwargs.setdefault("seed", self.seed + distributed.rank())
        self._env_needs_seed = False
        return self.env.reset(**kwargs)

    def _draw_tasks(self, env: gym.Env, n: int) -> tuple[list[Any], list[Any]]:
        """``n`` prompts from the training env, with the task ids that pin them again."""
        return draw_tasks(self._reset_env, n, type(self).__name__)

    @property
    def rollout_engine(self) -> RolloutEngine:
        """The engine that samples the rollouts (built on first use: vLLM's takes seconds to start)."""
        if self._rollout_engine is None:
            self._rollout_engine = make_rollout_engine(
                self.generation_backend,
                self.policy,
                gpu_memory_utilization=self.vllm_gpu_memory_utilization,
                seed=None if self.seed is None else self.seed + distributed.rank(),
            )
        if self._rollout_engine.policy is not self.policy:
            raise ValueError(
                "the rollout engine samples another policy than this agent's: build it on the agent's own policy "
                "instance (pass that instance as the agent's policy too)"
            )
        return self._rollout_engine

    def _sample(self, observations: list[Any], n: int) -> CompletionBatch:
        """``n`` completions per observation from the rollout engine, with the weights of the last
        update. An engine whose log-probs are not the trainer's gets them recomputed by the
        trainer's forward (the old log-probs of the ratio) and, with ``rollout_correction``,
        importance weights for the mismatch in ``extras["is_weights"]``; the mismatch is logged."""
        engine = self.rollout_engine
        engine.sync_weights()
        batch = engine.sample(observations, n)
        if engine.exact_log_probs:
            return batch
        with torch.no_grad():
            trainer = self.policy.log_probs(batch).log_probs.float()
        mask = batch.mask
        diff = logprob_diff(trainer, batch.log_probs, mask)
        self.logger.record("rollout/logprob_diff_mean", float(diff.mean))
        self.logger.record("rollout/logprob_diff_max", float(diff.max))
        extras = {**batch.extras, "engine_log_probs": batch.log_probs}
        if self.rollout_correction is not None:
            w = correction_weights(trainer, batch.log_probs, mask, self.rollout_correction, self.rollout_correction_cap)
            extras["is_weights"] = w.weights
            self.logger.record("rollout/is_ratio_mean", float(w.ratio_mean))
            self.logger.record("rollout/is_clip_fraction", float(w.clip_fraction))
        return dataclasses.replace(batch, log_probs=torch.where(mask, trainer, 0.0), extras=extras)

    def _reward_pool_for(self, env: gym.Env) -> RewardPool | None:
        """The worker pool that scores ``env``'s completions (built on first use), or None."""
        if not self.reward_workers:
            return None
        if self._reward_pool is None or self._reward_pool.spec != env.spec:
            if self._reward_pool is not None:
                self._reward_pool.close()
            if getattr(self, "reward_backend", "processes") == "ray":  # agents saved before it had none
                self._reward_pool = RayRewardPool(env, self.reward_workers, getattr(self, "ray_address", None))
            else:
                self._reward_pool = RewardWorkerPool(env, self.reward_workers)
        return self._reward_pool

    def _step_hook(self, callback: BaseCallback) -> OnStep:
        """What the collectors call after each scored completion: count the timestep and run the
        callbacks' ``on_step`` with ``reward`` and ``info`` in their locals; False stops training."""

        step = distributed.world_size()  # num_timesteps counts the completions of every process

        def on_step(reward: float, info: dict[str, Any]) -> bool:
            self.num_timesteps += step
            callback.update_locals({"reward": reward, "info": info})
            return bool(callback.on_step())

        return on_step

    def _gradient_step(self, loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
        """Backpropagate ``loss``, clip the global gradient norm, and step the optimiser.

        A non-finite gradient is the optimiser's to refuse: ``grpo train`` passes
        :class:`~grpo_agent.run.faults.FiniteGuardAdamW`, which skips such a step and counts it.

        Under DeepSpeed its engine does all three (:mod:`~grpo_agent.common.deepspeed_support`).

        :return: the gradient norm before clipping.
        """
        if self._deepspeed_engine is not None:
            from grpo_agent.common import deepspeed_support

            self._n_updates += 1
            return deepspeed_support.backward_and_step(self._deepspeed_engine, loss, self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(params)  # W processes step as one with their W batches
        max_norm = float("inf") if self.max_grad_norm is None else self.max_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self._n_updates += 1
        if isinstance(grad_norm, DTensor):  # sharded gradients: the norm over every process's shards
            grad_norm = grad_norm.full_tensor()
        return float(grad_norm)

    def _record_means(self, prefix: str, stats: dict[str, list[float]]) -> None:
        """Log the mean of each list of per-minibatch statistics as ``prefix/name``."""
        for name, values in stats.items():
            self.logger.record(f"{prefix}/{name}", float(np.mean(values)))

    def _update_learning_rate(self) -> float:
        """Set the optimiser's learning rate from the schedule; return it."""
        lr = float(self.lr_schedule(self._current_progress_remaining))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _setup_learn(
        self, total_timesteps: int, callback: Any, reset_num_timesteps: bool, tb_log_name: str, progress_bar: bool
    ) -> tuple[int, BaseCallback]:
        if self.env is None:
            raise ValueError("this agent has no env; pass env= to load() or call set_env(env) before learn()")
        self._start_time = time.time_ns()
        if reset_num_timesteps:
            self.num_timesteps = 0
        else:
            total_timesteps += self.num_timesteps
        self._total_timesteps = total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        if not self._custom_logger:
            self._close_own_logger()
            main = distributed.is_main_process()  # the other processes log nowhere
            self._logger = configure_logger(
                self.verbose if main else 0, self.tensorboard_log if main else None, tb_log_name, reset_num_timesteps
            )
            # The logger's files stay open while the agent lives (SB3's behaviour: more learn()
            # calls may append), and are closed when it is collected or replaced.
            self._logger_finalizer = weakref.finalize(self, self._logger.close)
        callback = make_callback(callback, progress_bar)
        callback.init_callback(self)  # type: ignore[arg-type,unused-ignore]  # SB3 types it as its own BaseAlgorithm
        return total_timesteps, callback

    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 1,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Train for ``total_timesteps`` env steps (scored completions).

        :param total_timesteps: env steps to run; the last rollout is completed, so slightly
            more may be run.
        :param callback: a callback, a list of them, or a function ``(locals, globals) -> bool``.
        :param log_interval: dump the logs every this many updates (0: never).
        :param tb_log_name: TensorBoard run name (default: the algorithm's name).
        :param reset_num_timesteps: False continues the timestep count (and the schedule) of
            a previous ``learn``.
        :param progress_bar: show a live progress bar (tqdm + rich).
        :return: the trained agent.
        """
        iteration = 0
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name or self.tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        while self.num_timesteps < total_timesteps:
            if not self.collect_rollouts(self.env, callback):
                break
            iteration += 1
            self._current_progress_remaining = 1.0 - float(self.num_timesteps) / float(self._total_timesteps)
            self.train()
            if log_interval and iteration % log_interval == 0:
                self.dump_logs(iteration)
        callback.on_training_end()
        return self

    def dump_logs(self, iteration: int) -> None:
        """Record the time/ metrics and write every recorded value to the logger's outputs."""
        elapsed = max((time.time_ns() - self._start_time) / 1e9, 1e-9)
        self.logger.record("time/iterations", iteration, exclude="tensorboard")
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if self._reward_pool is not None:
            self.logger.record("rollout/reward_worker_deaths", self._reward_pool.worker_deaths)
        if distributed.is_distributed():
            # Every process recorded its own means; rank 0 writes their average (time/ and
            # counters are the same everywhere or rank 0's to report).
            self.logger.name_to_value.update(distributed.mean_over_processes(self._reducible_metrics()))
        self.logger.dump(step=self.num_timesteps)

    def _reducible_metrics(self) -> dict[str, float]:
        """The recorded rollout/ and train/ means (counters and time/ values stay as they are)."""
        return {
            k: float(v)
            for k, v in self.logger.name_to_value.items()
            if k.startswith(("rollout/", "train/")) and k != "train/n_updates" and isinstance(v, (int, float))
        }

    # -- logger and env --------------------------------------------------------------------

    @property
    def logger(self) -> Logger:
        """The SB3 logger (configured at ``learn`` unless set with :meth:`set_logger`)."""
        if self._logger is None:
            self._logger = configure_logger(0)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use this logger (e.g. ``configure("runs/x", ["stdout", "csv", "tensorboard"])``); closing
        it is the caller's business."""
        self._close_own_logger()
        self._logger, self._custom_logger = logger, True

    def _close_own_logger(self) -> None:
        """Close the logger that ``learn`` configured, if any (not one given to set_logger)."""
        finalizer = getattr(self, "_logger_finalizer", None)
        if finalizer is not None:
            finalizer()
            self._logger_finalizer = None

    def get_env(self) -> gym.Env | None:
        """The training env."""
        return self.env

    def set_env(self, env: gym.Env | str) -> None:
        """Train on another env with the same spaces."""
        env = gym.make(env) if isinstance(env, str) else env
        if env.observation_space != self.observation_space or env.action_space != self.action_space:
            raise ValueError(
                f"the new env's spaces ({env.observation_space}, {env.action_space}) differ from the agent's "
                f"({self.observation_space}, {self.action_space}); build a new agent for it"
            )
        self.env = env
        self._env_needs_seed = True

    # -- inference -------------------------------------------------------------------------

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[Any, Any]:
        """The policy's action(s), with SB3's signature: ``action, _ = model.predict(obs)``.

        :param observation: one observation, or a list / 1-d array of them.
        :param state: unused (no recurrent policies); returned as is.
        :param episode_start: unused.
        :param deterministic: greedy action instead of a sample.
        :return: ``(action, state)``; a list/array of actions for a batch of observations.
        """
        single = isinstance(observation, (str, bytes)) or np.ndim(observation) == 0
        observations = [observation] if single else list(observation)
        with torch.no_grad():
            actions = self.policy.sample(observations, n=1, deterministic=deterministic).actions
        if single:
            return actions[0], state
        return (np.asarray(actions) if isinstance(observation, np.ndarray) else actions), state

    # -- save / load -----------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        """Algorithm state that is not a plain attribute (subclasses extend). Every process of a
        group calls it (a sharded network's full state is gathered by all); rank 0's is saved."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Restore :meth:`_extra_state`."""

    def save(self, path: str | pathlib.Path, exclude: Iterable[str] | None = None) -> None:
        """Save hyperparameters, policy and optimiser state, and every RNG state to a zip file.

        In a process group, rank 0 alone writes; a sharded agent (``fsdp``, ``deepspeed``) is
        gathered first, so there every process must call ``save``.

        The env is not saved (pass it to ``load``), but its RNG state is, so that a loaded
        agent given an env of the same kind continues training exactly as the original would.

        :param path: file path; ``.zip`` is added when it has no suffix.
        :param exclude: extra attribute names not to save.
        """
        path = pathlib.Path(path)
        if path.suffix == "":
            path = path.with_suffix(".zip")
        if self.policy.sharding_plan is not None:  # every process gathers the full tensors to rank 0
            policy_state = fsdp_sharding.full_state_dict(self.policy)
            optimizer_state = fsdp_sharding.full_optimizer_state_dict(self._optimized_module(), self.optimizer)
        elif self._deepspeed_engine is not None:  # whole weights everywhere; the optimiser's partitions gathered
            from grpo_agent.common import deepspeed_support

            policy_state = deepspeed_support.whole_state_dict(self.policy)
            optimizer_state = deepspeed_support.full_optimizer_state_dict(self.policy, self.optimizer)
        else:
            policy_state, optimizer_state = self.policy.state_dict(), self.optimizer.state_dict()
        extra = self._extra_state()  # before rank 0 goes on alone: a sharded critic is gathered by all
        if not distributed.is_main_process():  # the processes of a group hold one agent: rank 0 writes it
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        skip = set(_NOT_PICKLED) | set(exclude or ())
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        env_rng = _env_rng(self.env)
        rng = {
            "policy": self.policy.get_rng_state(),
            "env": None if env_rng is None else env_rng.bit_generator.state,
            "env_seeded": not self._env_needs_seed,
        }
        tensors = {
            "policy": policy_state,
            "optimizer": optimizer_state,
            "extra": extra,
        }
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.pkl", cloudpickle.dumps(data))
            archive.writestr("rng.pkl", cloudpickle.dumps(rng))
            for name, obj in tensors.items():
                buffer = io.BytesIO()
                torch.save(obj, buffer)
                archive.writestr(f"{name}.pth", buffer.getvalue())

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path,
        env: gym.Env | str | None = None,
        device: torch.device | str = "auto",
        **kwargs: Any,
    ) -> Self:
        """Load an agent saved with :meth:`save`. The file is unpickled: load only files you trust.

        :param path: the saved file (``.zip`` is tried when the path has no suffix).
        :param env: the env to continue training on (None: prediction only, until ``set_env``).
            Its RNG is set to the saved env's state.
        :param device: where to put the policy.
        :param kwargs: attributes to override after loading (e.g. ``learning_rate=1e-3``).
        """
        path = pathlib.Path(path)
        if not path.exists() and path.suffix == "":
            path = path.with_suffix(".zip")
        if not path.exists():
            raise FileNotFoundError(f"no saved agent at {path}")
        with zipfile.ZipFile(path) as archive:
            data = cloudpickle.loads(archive.read("data.pkl"))
            rng = cloudpickle.loads(archive.read("rng.pkl"))
            target = get_device(device)
            tensors = {
                name: torch.load(io.BytesIO(archive.read(f"{name}.pth")), map_location=target, weights_only=False)
                for name in ("policy", "optimizer", "extra")
            }
        model = cls.__new__(cls)
        model.__dict__.update(data)
        model.__dict__.update(kwargs)
        model.device = target
        model._logger, model._custom_logger, model._logger_finalizer = None, False, None
        model._reward_pool = None
        model._rollout_engine = None
        model._deepspeed_engine = None
        model.env = None
        if env is not None:
            model.set_env(env)
            env_rng = _env_rng(model.env)
            if rng["env"] is not None and env_rng is not None:
                env_rng.bit_generator.state = rng["env"]
                model._env_needs_seed = not rng["env_seeded"]
        model._setup_model()
        if model.policy.sharding_plan is not None:
            fsdp_sharding.load_full_state_dict(model.policy, tensors["policy"])
        else:
            model.policy.load_state_dict(tensors["policy"])
        if model._deepspeed_engine is not None:
            from grpo_agent.common import deepspeed_support

            # DeepSpeed's fp32 master weights were copied from the weights before this load
            deepspeed_support.load_full_state(
                model._deepspeed_engine, model.policy, model.optimizer, tensors["optimizer"]
            )
        elif model.policy.sharding_plan is not None or _keyed_by_name(tensors["optimizer"]):
            # a sharded run's optimiser state is keyed by parameter name, and loads with or without shards
            fsdp_sharding.load_full_optimizer_state_dict(
                model._optimized_module(), model.optimizer, tensors["optimizer"]
            )
        else:
            model.optimizer.load_state_dict(tensors["optimizer"])
        model._set_extra_state(tensors["extra"])
        model.policy.set_rng_state(rng["policy"])
        if distributed.rank() > 0:  # the checkpoint holds rank 0's generators: the others need streams of their own
            model.set_random_seed((model.seed or 0) + model.num_timesteps)
        return model
