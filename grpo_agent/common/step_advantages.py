"""Step-level advantages for multi-turn episodes: GiGPO's anchor-state groups.

Episode-level GRPO gives every turn of an episode the episode's group-relative advantage, so a
good turn in a failed episode is pushed down with the rest. GiGPO (Feng et al. 2025,
"Group-in-Group Policy Optimization for LLM Agent Training", arXiv:2505.10978) adds a second,
finer level of groups: the turns of the group's episodes that acted in the same state (an
"anchor state") are compared with each other by their discounted return from that turn on,

    ``R_t = sum_{k >= t} discount^(k - t) r_k``,  ``A_S = (R_t - mean_S) / (std_S + eps)``,

and each token of turn ``t`` learns from ``A_E + step_advantage_weight * A_S``. The design's
"high level coarse decisions, low level fine execution, GRPO at each level" is this: the
episode group judges the whole trajectory, the anchor group the decision taken in one state.

A state is what the env showed the policy (:class:`~grpo_agent.common.multi_turn.MultiTurnRollout`'s
``turn_states``: the prompt and every reply so far). Every episode's first turn acts in the
prompt's state, so with rewards only at the end the first turns' step group is the episode
group itself; the step level adds information where episodes meet again later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch

from grpo_agent.common.advantages import DEFAULT_STD_EPS, ScaleRewards
from grpo_agent.common.utils import check_choice

#: GiGPO's discount of step returns (Feng et al. 2025 use 0.95).
DEFAULT_STEP_DISCOUNT = 0.95


def discounted_returns(rewards: Sequence[float], discount: float = DEFAULT_STEP_DISCOUNT) -> list[float]:
    """``R_t = r_t + discount * R_{t+1}`` for one episode's per-turn rewards."""
    returns = [0.0] * len(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + discount * running
        returns[t] = running
    return returns


def anchor_state_advantages(
    states: Sequence[Sequence[Hashable]],
    rewards: Sequence[Sequence[float]],
    discount: float = DEFAULT_STEP_DISCOUNT,
    scale_rewards: ScaleRewards = "group",
    std_eps: float = DEFAULT_STD_EPS,
) -> list[list[float]]:
    """Step-level advantages of the episodes of one task's group.

    :param states: per episode, the state key of each turn.
    :param rewards: per episode, the reward of each turn.
    :param discount: of the step returns.
    :param scale_rewards: ``"none"`` only centres each anchor group; otherwise it is also divided
        by its std (unbiased, as the episode level).
    :param std_eps: added to the std.
    :return: per episode, one advantage per turn; 0 for a turn whose anchor group has a single
        member or equal returns (no relative signal), exactly.
    """
    check_choice("scale_rewards", scale_rewards, ScaleRewards)
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"step_discount must be in [0, 1], got {discount}")
    if len(states) != len(rewards) or any(len(s) != len(r) for s, r in zip(states, rewards)):
        raise ValueError("states and rewards must have one entry per turn of every episode")
    returns = [discounted_returns(r, discount) for r in rewards]
    members: dict[Hashable, list[tuple[int, int]]] = defaultdict(list)
    for i, episode in enumerate(states):
        for t, state in enumerate(episode):
            members[state].append((i, t))
    advantages = [[0.0] * len(r) for r in rewards]
    for group in members.values():
        values = torch.tensor([returns[i][t] for i, t in group], dtype=torch.float64)
        if len(group) < 2 or bool(values.max() == values.min()):
            continue
        centred = values - values.mean()
        if scale_rewards != "none":
            centred = centred / (values.std() + std_eps)
        for (i, t), a in zip(group, centred.tolist()):
            advantages[i][t] = a
    return advantages


def per_token(turn_ends: Sequence[Sequence[int]], values: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    """``(rows, width)``: each turn's value on the positions it owns (``[turn_ends[t-1], turn_ends[t])``).

    Positions after an episode's last turn get 0 (they are padding, outside the loss mask).
    """
    out = torch.zeros(len(turn_ends), width, dtype=torch.float64)
    for row, (ends, vals) in enumerate(zip(turn_ends, values)):
        start = 0
        for end, value in zip(ends, vals):
            out[row, start:end] = value
            start = end
    return out
