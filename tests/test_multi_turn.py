"""Multi-turn rollouts on grpo/ToolUse-v0: the policy's tokens of every turn count, the env's never."""

from __future__ import annotations

import zipfile

import cloudpickle
import gymnasium as gym
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.common.multi_turn import EnvPool, is_multi_turn, rollout_multi_turn
from grpo_agent.policies.tiny import TinyConfig, TinyPolicy

SMALL = TinyConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
CALL = '<tool_call>{"name": "calculate", "arguments": {"expression": "16 - 33 - 46"}}</tool_call>'


pytestmark = pytest.mark.usefixtures("torch_one_thread")


class ScriptedPolicy(TinyPolicy):
    """The tiny policy, but each turn's tokens are forced to a script (teacher forcing), so
    every log-prob is still the model's own for the token it emitted."""

    def __init__(self, *args, turns: list[list[str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.turns, self.turn, self.step_in_turn = turns, 0, 0

    def generate_tokens(self, contexts, **kwargs):
        texts = self.turns[self.turn]
        rows = texts if len(texts) == len(contexts) else [t for t in texts for _ in range(len(contexts) // len(texts))]
        self.forced = [
            self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id] for t in rows
        ]
        self.step_in_turn = 0
        out = super().generate_tokens(contexts, max_new_tokens=max(len(f) for f in self.forced))
        self.turn += 1
        return out

    def _sample_top_p(self, logits):
        step = self.step_in_turn
        self.step_in_turn += 1
        pad = self.tokenizer.pad_token_id
        return torch.tensor([f[step] if step < len(f) else pad for f in self.forced])


def test_tool_use_rollout_trains_own_tokens_and_masks_the_env_replies():
    env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
    assert is_multi_turn(env) and not is_multi_turn(gym.make("grpo/Math-v0"))
    prompt, _ = env.reset(options={"task_id": 0})
    # Row 0 calls the calculator then answers right; row 1 answers at once, wrongly.
    policy = ScriptedPolicy(
        env.observation_space,
        env.action_space,
        tiny_config=SMALL,
        max_new_tokens=4,
        turns=[[CALL, "Answer: 5"], ["Answer: -63"]],
    )
    pool = EnvPool(env)
    result = rollout_multi_turn(policy, pool.take(2), [prompt], [0], n=2)
    assert result is not None
    assert result.rewards.tolist() == [1.0, 0.0] and result.turns.tolist() == [2, 1]
    batch = result.completions
    tok = policy.tokenizer
    own_text = [
        tok.decode(row[mask].tolist(), skip_special_tokens=True) for row, mask in zip(batch.token_ids, batch.mask)
    ]
    assert own_text == [CALL + "Answer: -63", "Answer: 5"]  # the policy's tokens, turns concatenated
    all_text = tok.decode(batch.token_ids[0, : int(batch.extras["length"][0])].tolist(), skip_special_tokens=True)
    assert "<tool_response" in all_text and "-63" in all_text  # the env's reply is in the sequence ...
    with torch.no_grad():
        fresh = policy.log_probs(batch).log_probs
    assert torch.allclose(fresh[batch.mask], batch.log_probs[batch.mask], atol=1e-5)  # ... as masked context
    pool.close()


def test_grpo_trains_on_tool_use_through_the_multi_turn_collector():
    from grpo_agent import GRPO

    env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
    # Every group: half the rows call the tool then answer right, half answer wrongly at once.
    turns = [[CALL, "Answer: 7", CALL, "Answer: 7"], ["Answer: -63", "Answer: -63"]]
    policy = ScriptedPolicy(
        env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=4, turns=turns * 4
    )
    model = GRPO(policy, env, learning_rate=1e-3, group_size=4, n_groups=1, beta=0.04, seed=0)
    before = [p.detach().clone() for p in policy.parameters()]
    # The scripted answers fit task 0 only: pin every group to it.
    model._draw_tasks = lambda env_, n: ([env_.reset(options={"task_id": 0})[0]] * n, [0] * n)
    model.learn(total_timesteps=4)
    assert model.num_timesteps == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    assert model.rollout_buffer.rewards.tolist() == [[1.0, 0.0, 1.0, 0.0]]


def test_grpo_builds_the_tiny_policy_by_name():
    from grpo_agent import GRPO

    env = gym.make("grpo/Math-v0", levels=1, num_tasks=20)
    model = GRPO("tiny", env, policy_kwargs={"sft_steps": 2, "tiny_config": SMALL, "max_new_tokens": 4}, seed=0)
    assert type(model.policy).__name__ == "TinyPolicy"
    model.learn(total_timesteps=16)


def test_the_multi_turn_collector_is_not_saved_and_a_loaded_agent_builds_its_own(tmp_path):
    from grpo_agent import GRPO

    env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
    turns = [[CALL, "Answer: 7", CALL, "Answer: 7"], ["Answer: -63", "Answer: -63"]]
    policy = ScriptedPolicy(
        env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=4, turns=turns * 4
    )
    model = GRPO(policy, env, learning_rate=1e-3, group_size=4, n_groups=1, seed=0)
    model._draw_tasks = lambda env_, n: ([env_.reset(options={"task_id": 0})[0]] * n, [0] * n)
    model.learn(total_timesteps=4)
    assert model.multi_turn_collector.pool is not None and len(model.multi_turn_collector.pool.members) == 4
    model.save(tmp_path / "agent")
    with zipfile.ZipFile(tmp_path / "agent.zip") as archive:
        saved = cloudpickle.loads(archive.read("data.pkl"))
    assert "multi_turn_collector" not in saved and not any(isinstance(v, EnvPool) for v in saved.values())
    # A loaded agent gets a fresh collector from _setup_model (here with the scripted policy instance).
    loaded = GRPO.load(tmp_path / "agent", env=env, policy_spec=policy, policy_kwargs={})
    assert loaded.multi_turn_collector is not model.multi_turn_collector
    assert loaded.multi_turn_collector.pool is None


def test_the_one_step_collector_refuses_an_episode_that_goes_on():
    from grpo_agent.common.rollout import score_completions

    env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
    with pytest.raises(RuntimeError, match="multi-turn"):
        score_completions(env, [CALL], [0], lambda reward, info: True)
    with pytest.raises(ValueError, match="one task id per completion"):
        score_completions(env, [CALL, CALL], [0], lambda reward, info: True)
