"""TabularPolicy: a softmax table over Discrete spaces, on which every GRPO quantity is exact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from grpo_agent.policies.base import BasePolicy, CompletionBatch, TokenLogProbs


class TabularPolicy(BasePolicy):
    """``pi(a | s) = softmax(logits[s])`` with one free logit per (state, action).

    Every completion is one token, the action, so ``T = 1`` and
    :attr:`max_completion_length` is 1. The reference policy is a frozen copy of the initial
    table (a buffer, saved with the policy). Expectations under the policy can be computed by
    enumerating actions: :meth:`action_probs` returns the whole table.

    :param observation_space: ``Discrete(n_states)``.
    :param action_space: ``Discrete(n_actions)``.
    :param initial_logits: ``(n_states, n_actions)`` starting logits; None means all zeros
        (the uniform policy).
    :param dtype: parameter dtype; ``torch.float64`` makes finite-difference checks exact to
        ~1e-10.

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> from grpo_agent import TabularPolicy
        >>> env = gym.make("grpo/Bandit-v0")
        >>> policy = TabularPolicy(env.observation_space, env.action_space)
        >>> batch = policy.sample([0, 3], n=4)
        >>> batch.token_ids.shape, len(batch.actions)
        (torch.Size([8, 1]), 8)
    """

    logits: torch.nn.Parameter
    reference_logits: torch.Tensor

    max_completion_length = 1

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        initial_logits: np.ndarray | torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not isinstance(observation_space, spaces.Discrete) or not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                "TabularPolicy needs Discrete observation and action spaces, got "
                f"{observation_space} and {action_space}; use a language-model policy for text envs"
            )
        super().__init__(observation_space, action_space)
        self.n_states, self.n_actions = int(observation_space.n), int(action_space.n)
        self._obs_start, self._act_start = int(observation_space.start), int(action_space.start)
        self.dtype = dtype
        if initial_logits is None:
            logits = torch.zeros(self.n_states, self.n_actions, dtype=dtype)
        else:
            logits = torch.as_tensor(np.asarray(initial_logits), dtype=dtype).clone()
            if logits.shape != (self.n_states, self.n_actions):
                raise ValueError(
                    f"initial_logits must have shape ({self.n_states}, {self.n_actions}), got {tuple(logits.shape)}"
                )
        self.logits = torch.nn.Parameter(logits)
        self.register_buffer("reference_logits", logits.detach().clone())
        # Sampling always happens on the CPU so one generator serves any device. Its seed comes
        # from the global torch RNG, so `torch.manual_seed` (or the agent's seed) controls it.
        self.generator = torch.Generator()
        self.generator.manual_seed(int(torch.randint(2**62, (1,)).item()))

    # -- helpers ---------------------------------------------------------------------------

    def state_index(self, observations: Sequence[Any]) -> torch.Tensor:
        """Row of the table for each observation (a ``(B,)`` long tensor on the table's device)."""
        idx = np.asarray([int(np.asarray(o).item()) for o in observations], dtype=np.int64) - self._obs_start
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_states):
            raise ValueError(f"observations {observations} are outside {self.observation_space}")
        return torch.as_tensor(idx, device=self.logits.device)

    def action_probs(self) -> np.ndarray:
        """The whole ``(n_states, n_actions)`` probability table, as float64 numpy."""
        with torch.no_grad():
            return torch.softmax(self.logits.double(), dim=-1).cpu().numpy()

    def reference_probs(self) -> np.ndarray:
        """The frozen reference policy's probability table."""
        with torch.no_grad():
            return torch.softmax(self.reference_logits.double(), dim=-1).cpu().numpy()

    def reset_reference(self) -> None:
        """Make the current policy the new reference (TRL's ``sync_ref_model``)."""
        with torch.no_grad():
            self.reference_logits.copy_(self.logits)

    # -- the policy interface --------------------------------------------------------------

    def sample(self, observations: Sequence[Any], n: int = 1, deterministic: bool = False) -> CompletionBatch:
        states = self.state_index(observations)
        with torch.no_grad():
            log_p = torch.log_softmax(self.logits[states], dim=-1).cpu()
        if deterministic:
            tokens = log_p.argmax(dim=-1, keepdim=True).expand(-1, n)
        else:
            tokens = torch.multinomial(log_p.exp().float(), n, replacement=True, generator=self.generator)
        token_ids = tokens.reshape(-1, 1)  # (N * n, 1), grouped by observation
        rows = torch.arange(len(observations)).repeat_interleave(n)
        old = log_p[rows, token_ids[:, 0]].unsqueeze(1)
        device = self.logits.device
        return CompletionBatch(
            observations=[observations[i] for i in rows.tolist()],
            actions=[t + self._act_start for t in token_ids[:, 0].tolist()],
            token_ids=token_ids.to(device),
            mask=torch.ones_like(token_ids, dtype=torch.bool, device=device),
            log_probs=old.to(device),
            truncated=torch.zeros(len(rows), dtype=torch.bool, device=device),
        )

    def log_probs(self, batch: CompletionBatch, *, entropy_grad: bool = False) -> TokenLogProbs:
        log_p = torch.log_softmax(self.logits[self.state_index(batch.observations)], dim=-1)
        entropy = -(log_p.exp() * log_p).sum(dim=-1, keepdim=True)
        return TokenLogProbs(log_p.gather(1, batch.token_ids), entropy)

    def reference_log_probs(self, batch: CompletionBatch) -> torch.Tensor:
        with torch.no_grad():
            log_p = torch.log_softmax(self.reference_logits[self.state_index(batch.observations)], dim=-1)
            return log_p.gather(1, batch.token_ids)

    def get_constructor_parameters(self) -> dict[str, Any]:
        return {**super().get_constructor_parameters(), "dtype": self.dtype}
