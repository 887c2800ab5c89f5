"""Hierarchical GRPO for multi-turn episodes: GiGPO's anchor-state step advantages, exactly,
on a deterministic corridor whose step values are known."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
import torch
from gymnasium import spaces
from test_multi_turn import SMALL, ScriptedPolicy

from grpo_agent import GRPO
from grpo_agent.common.step_advantages import anchor_state_advantages, discounted_returns, per_token

EPS = 1e-4

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class Corridor(gym.Env[str, str]):
    """Walk from 0 to the task's target: "+1" or "+2" per turn; reaching it exactly earns 1,
    overshooting (or anything else) ends the episode with 0. The reply is the position, and
    ``info["state"]`` declares it the state."""

    metadata: dict[str, Any] = {"render_modes": []}
    max_turns = 4

    def __init__(self, targets: tuple[int, ...] = (3,)) -> None:
        self.targets = targets
        self.observation_space = spaces.Text(max_length=64, min_length=0)
        self.action_space = spaces.Text(max_length=64, min_length=0)
        self.position, self.target, self.turn = 0, targets[0], 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        task = int((options or {}).get("task_id", self.np_random.integers(len(self.targets))))
        self.position, self.target, self.turn = 0, self.targets[task], 0
        return f"walk to {self.target}", {"task_id": task, "state": 0}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turn += 1
        move = {"+1": 1, "+2": 2}.get(action.strip())
        self.position += move or 99
        done = move is None or self.position >= self.target
        reward = float(self.position == self.target)
        truncated = not done and self.turn >= self.max_turns
        return f"at {self.position}", reward, done, truncated, {"correct": bool(reward), "state": self.position}


def test_discounted_returns():
    assert discounted_returns([0.0, 0.0, 1.0], 0.5) == [0.25, 0.5, 1.0]
    assert discounted_returns([1.0, 2.0], 1.0) == [3.0, 2.0]


def test_anchor_groups_compare_turns_that_acted_in_the_same_state():
    # Four episodes of one task, target 3, discount 0.5, states = positions (see the corridor
    # test below for who did what): ep1's third turn and the second turns of ep2 and ep3 all
    # stand on square 2, reached by different paths.
    states = [[0, 1], [0, 1, 2], [0, 2], [0, 2]]
    rewards = [[0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    adv = anchor_state_advantages(states, rewards, discount=0.5, scale_rewards="group", std_eps=EPS)
    first = torch.tensor([0.5, 0.25, 0.0, 0.5], dtype=torch.float64)  # each episode's return from square 0
    assert [a[0] for a in adv] == pytest.approx(((first - first.mean()) / (first.std() + EPS)).tolist(), abs=1e-12)
    # square 1: returns 1 (ep0) and 0.5 (ep1): centred +-0.25, std 0.5 / sqrt(2)
    assert adv[0][1] == pytest.approx(0.25 / (0.5 * 2**-0.5 + EPS), abs=1e-12)
    assert adv[1][1] == pytest.approx(-0.25 / (0.5 * 2**-0.5 + EPS), abs=1e-12)
    # square 2: returns 1 (ep1), 0 (ep2), 1 (ep3): mean 2/3, std sqrt(1/3)
    std = (1 / 3) ** 0.5 + EPS
    assert [adv[1][2], adv[2][1], adv[3][1]] == pytest.approx([1 / 3 / std, -2 / 3 / std, 1 / 3 / std], abs=1e-12)
    centred = anchor_state_advantages(states, rewards, discount=0.5, scale_rewards="none")
    assert centred[0][1] == 0.25 and centred[2][1] == pytest.approx(-2 / 3, abs=1e-15)


def test_a_turn_alone_in_its_state_or_in_a_constant_group_gets_exactly_zero():
    adv = anchor_state_advantages([["a", "b"], ["a", "c"], ["a"]], [[0.0, 1.0], [0.0, 1.0], [1.0]], discount=1.0)
    assert adv == [[0.0, 0.0], [0.0, 0.0], [0.0]]  # "a": returns 1, 1, 1; "b" and "c" alone
    with pytest.raises(ValueError, match="one entry per turn"):
        anchor_state_advantages([["a"]], [[0.0, 1.0]])


def test_per_token_gives_each_turn_its_positions():
    out = per_token([[2, 5], [3]], [[1.0, -1.0], [4.0]], width=6)
    assert out.tolist() == [[1, 1, -1, -1, -1, 0], [4, 4, 4, 0, 0, 0]]


def test_grpo_adds_weighted_step_advantages_to_each_turns_tokens_on_the_corridor():
    env = Corridor()
    # Turn by turn, the rows still running: ep0 +1 +2 (reaches 3), ep1 +1 +1 +1 (reaches 3),
    # ep2 +2 +2 (overshoots), ep3 +2 +1 (reaches 3).
    turns = [["+1", "+1", "+2", "+2"], ["+2", "+1", "+2", "+1"], ["+1"]]
    policy = ScriptedPolicy(env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=4, turns=turns)
    model = GRPO(
        policy, env, learning_rate=1e-3, group_size=4, n_groups=1, beta=0.0, seed=0,
        step_advantage_weight=0.5, step_discount=0.5,
    )  # fmt: skip
    model.learn(total_timesteps=4, log_interval=0)  # no dump: the logged values stay readable
    buffer = model.rollout_buffer
    assert buffer.rewards.tolist() == [[1.0, 1.0, 0.0, 1.0]]
    episode = torch.tensor([0.25, 0.25, -0.75, 0.25], dtype=torch.float64) / (0.5 + EPS)
    torch.testing.assert_close(buffer.advantages, episode, rtol=0, atol=1e-12)
    states = [[0, 1], [0, 1, 2], [0, 2], [0, 2]]
    rewards = [[0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    step = anchor_state_advantages(states, rewards, discount=0.5, std_eps=EPS)
    assert model.rollout_buffer is buffer
    assert [len(s) for s in step] == [2, 3, 2, 2]
    tokens, mask = buffer.token_advantages, buffer.completions.mask
    assert tokens is not None
    for row in range(4):
        own = mask[row].nonzero().flatten().tolist()
        # each turn is "+k" then end-of-sequence: 3 policy tokens per turn
        per_turn = [own[3 * t : 3 * t + 3] for t in range(len(step[row]))]
        assert sum(len(p) for p in per_turn) == len(own)
        for t, positions in enumerate(per_turn):
            expected = float(episode[row]) + 0.5 * step[row][t]
            assert tokens[row, positions].tolist() == pytest.approx([expected] * 3, abs=1e-12)
    own = [0.5 * a for row, steps in enumerate(step) for a in steps for _ in range(3)]  # 3 tokens per turn
    logged = model.logger.name_to_value
    assert logged["rollout/step_advantage_abs"] == pytest.approx(sum(abs(a) for a in own) / len(own), abs=1e-9)
    assert logged["rollout/turns"] == pytest.approx(9 / 4)


def test_step_advantages_need_a_multi_turn_env():
    with pytest.raises(ValueError, match="multi-turn"):
        GRPO("tabular", gym.make("grpo/Bandit-v0"), step_advantage_weight=1.0)


def test_without_a_declared_state_a_turn_acts_in_the_history_of_what_the_env_showed():
    from test_multi_turn import CALL

    from grpo_agent.common.multi_turn import EnvPool, rollout_multi_turn

    env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
    prompt, _ = env.reset(options={"task_id": 0})
    # Row 0 calls the calculator, then answers right; row 1 answers at once, wrongly.
    policy = ScriptedPolicy(
        env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=4,
        turns=[[CALL, "Answer: 5"], ["Answer: -63"]],
    )  # fmt: skip
    pool = EnvPool(env)
    result = rollout_multi_turn(policy, pool.take(2), [prompt], [0], n=2)
    pool.close()
    assert result is not None
    reply = result.turn_states[0][1][1]
    assert "<tool_response" in reply and "-63" in reply
    assert result.turn_states == [[(prompt,), (prompt, reply)], [(prompt,)]]
    assert result.turn_rewards == [[0.0, 1.0], [0.0]]
    mask = result.completions.mask
    first, last = result.turn_ends[0]
    # turn 0 owns the call's tokens, turn 1 the answer's; the reply between them is masked out
    assert int(mask[0, :first].sum()) == len(CALL) + 1 and int(mask[0, first:last].sum()) == len("Answer: -63") + 1
    assert result.turn_ends[1] == [len("Answer: 5") + 1]
