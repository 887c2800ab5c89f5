"""The policy interface shared by every policy the agents train.

A policy answers an observation with a *completion*: a sequence of tokens of which some
positions are the policy's own. For :class:`~grpo_agent.policies.tabular.TabularPolicy` a
completion is a single token, the action. For a language model it is the generated text;
positions that are prompt, padding, after end-of-sequence, or inserted by the environment
are masked out. The algorithms' loss code sees only ``(B, T)`` tensors plus a mask, so the
same GRPO loss trains both kinds of policy unchanged.

Four methods make a policy:

- :meth:`BasePolicy.sample`: ``n`` completions per observation, with per-token log-probs;
- :meth:`BasePolicy.log_probs`: per-token log-probs (with gradient) and entropies of given
  completions under the current parameters;
- :meth:`BasePolicy.reference_log_probs`: the same under the frozen reference policy, no grad;
- :meth:`BasePolicy.predict`: one action for one observation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
from gymnasium import spaces
from torch import nn


@dataclass
class CompletionBatch:
    """``B`` completions, each a token sequence padded to length ``T``.

    Rows are grouped by observation: with ``n`` samples per observation, rows
    ``[i * n, (i + 1) * n)`` answer ``observations[i * n]`` (every row carries its own
    observation, so a batch can be shuffled and split freely).

    :param observations: the ``B`` observations (contexts) the completions answer.
    :param actions: the ``B`` env actions (an ``int`` for tabular policies, a ``str`` for
        language models).
    :param token_ids: ``(B, T)`` int64 token ids of the completions.
    :param mask: ``(B, T)`` bool, True where the token was produced by the policy and counts
        in the loss.
    :param log_probs: ``(B, T)`` per-token log-probs under the sampling policy (``pi_old``),
        detached; 0 where ``mask`` is False. They must equal what :meth:`BasePolicy.log_probs`
        returns for the same parameters, otherwise the importance ratio is biased.
    :param truncated: ``(B,)`` bool, True where the completion hit ``max_completion_length``
        without ending (TRL's ``mask_truncated_completions`` drops those from the loss).
    :param extras: policy-specific per-row data (e.g. prompt token ids); every value is a
        tensor or list with ``B`` rows so it is indexed along with the batch.
    """

    observations: list[Any]
    actions: list[Any]
    token_ids: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    truncated: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = len(self.actions)
        for name in ("token_ids", "mask", "log_probs"):
            tensor = getattr(self, name)
            if tensor.dim() != 2 or tensor.shape[0] != b:
                raise ValueError(f"CompletionBatch.{name} must have shape (B={b}, T), got {tuple(tensor.shape)}")
        if len(self.observations) != b or self.truncated.shape != (b,):
            raise ValueError(
                f"CompletionBatch needs {b} observations and a ({b},) truncated vector, "
                f"got {len(self.observations)} and {tuple(self.truncated.shape)}"
            )

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def completion_lengths(self) -> torch.Tensor:
        """``(B,)`` number of the policy's own tokens in each completion."""
        return self.mask.sum(dim=1)

    def index(self, rows: torch.Tensor | Sequence[int]) -> CompletionBatch:
        """The sub-batch of the given row indices (in that order)."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.token_ids.device)
        cpu_idx = idx.tolist()

        def take(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value[idx.to(value.device)]
            return [value[i] for i in cpu_idx]

        return replace(
            self,
            observations=take(self.observations),
            actions=take(self.actions),
            token_ids=take(self.token_ids),
            mask=take(self.mask),
            log_probs=take(self.log_probs),
            truncated=take(self.truncated),
            extras={k: take(v) for k, v in self.extras.items()},
        )

    @staticmethod
    def concatenate(batches: Sequence[CompletionBatch], pad_token_id: int = 0) -> CompletionBatch:
        """Stack batches row-wise, right-padding the token dimension to the longest."""
        if not batches:
            raise ValueError("CompletionBatch.concatenate needs at least one batch")
        width = max(b.token_ids.shape[1] for b in batches)

        def pad(t: torch.Tensor, value: Any) -> torch.Tensor:
            return nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        extras: dict[str, Any] = {}
        for key in batches[0].extras:
            values = [b.extras[key] for b in batches]
            if isinstance(values[0], torch.Tensor):
                if all(v.dim() == 2 and v.shape[1] == b.token_ids.shape[1] for v, b in zip(values, batches)):
                    # per-token extras (an engine's log-probs, importance weights) pad like log_probs
                    values = [pad(v, 0) for v in values]
                # Other per-row extras of different widths cannot be stacked; the policy owning
                # them must then keep them as lists.
                extras[key] = torch.cat(values)
            else:
                extras[key] = [v for vs in values for v in vs]
        return CompletionBatch(
            observations=[o for b in batches for o in b.observations],
            actions=[a for b in batches for a in b.actions],
            token_ids=torch.cat([pad(b.token_ids, pad_token_id) for b in batches]),
            mask=torch.cat([pad(b.mask, False) for b in batches]),
            log_probs=torch.cat([pad(b.log_probs, 0.0) for b in batches]),
            truncated=torch.cat([b.truncated for b in batches]),
            extras=extras,
        )


class TokenLogProbs(NamedTuple):
    """Per-token scores of a :class:`CompletionBatch` under the current policy.

    ``log_probs`` and ``entropy`` are ``(B, T)``; values at masked positions are arbitrary
    and must be ignored by the caller (the loss functions do).
    """

    log_probs: torch.Tensor
    entropy: torch.Tensor


class BasePolicy(nn.Module, ABC):
    """Base class of the policies trained by GRPO (and the language-model PPO).

    Subclasses implement :meth:`sample`, :meth:`log_probs` and :meth:`reference_log_probs`,
    and set :attr:`max_completion_length` (Dr. GRPO's loss normaliser). Parameters the
    optimiser should train are the module's parameters with ``requires_grad=True``.

    :param observation_space: the env's observation space.
    :param action_space: the env's action space.
    """

    #: The longest completion, in tokens; Dr. GRPO divides the summed loss by ``B * this``.
    max_completion_length: int = 1
    #: How :meth:`shard` sharded the networks (a :class:`~grpo_agent.policies.sharding.ShardingPlan`);
    #: None while they are whole.
    sharding_plan: Any = None

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        #: Sampling RNG; None means the global torch RNG (what ``model.generate`` uses).
        self.generator: torch.Generator | None = None

    @property
    def device(self) -> torch.device:
        """Where the trainable parameters live."""
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @abstractmethod
    def sample(self, observations: Sequence[Any], n: int = 1, deterministic: bool = False) -> CompletionBatch:
        """Draw ``n`` completions for each observation, without gradient.

        :param observations: ``N`` observations.
        :param n: completions per observation (the GRPO group size).
        :param deterministic: greedy decoding instead of sampling.
        :return: a batch of ``N * n`` rows, grouped by observation.
        """

    @abstractmethod
    def log_probs(self, batch: CompletionBatch, *, entropy_grad: bool = False) -> TokenLogProbs:
        """Per-token log-probs (differentiable) and entropies of ``batch`` under the current
        parameters; the entropies carry a gradient when ``entropy_grad`` is True (an entropy
        bonus needs it; policies may skip it otherwise to save memory)."""

    @abstractmethod
    def reference_log_probs(self, batch: CompletionBatch) -> torch.Tensor:
        """``(B, T)`` per-token log-probs under the frozen reference policy, without grad."""

    def predict(self, observation: Any, deterministic: bool = False) -> Any:
        """One env action for one observation."""
        return self.sample([observation], n=1, deterministic=deterministic).actions[0]

    def seed(self, seed: int | None) -> None:
        """Seed the sampling RNG (the global torch RNG when :attr:`generator` is None)."""
        if seed is None:
            return
        if self.generator is not None:
            self.generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)

    def get_rng_state(self) -> dict[str, Any]:
        """The sampling RNG's state, saved with the agent so that training resumes exactly."""
        if self.generator is not None:
            return {"generator": self.generator.get_state()}
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_rng_state`."""
        if "generator" in state and self.generator is not None:
            self.generator.set_state(state["generator"])
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    def shard(self, plan: Any) -> None:
        """Shard the policy's networks over the processes of the default process group
        (FSDP2, see :mod:`~grpo_agent.policies.sharding`); every process calls it with the same
        ``plan`` after the weights are the same everywhere and before the optimiser is built."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be sharded: FSDP is for language-model policies (CausalLMPolicy); "
            "train this one data-parallel without a sharding plan"
        )

    def get_constructor_parameters(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this policy (before its ``state_dict`` is loaded)."""
        return {"observation_space": self.observation_space, "action_space": self.action_space}
