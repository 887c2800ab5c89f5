"""TextBanditEnv and RewardFnEnv: the contract every text environment inherits."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

from grpo_envs import RewardFnEnv, Task, TextBanditEnv, VerifyResult
from grpo_envs.spaces import BROAD_CHARSET, UnicodeText


def exact_match(completion: str, reference: str) -> bool:
    return completion.strip() == reference


TASKS = [("Spell cat", "cat"), ("Spell dog", "dog"), ("Écris « été »", "été"), ("Spell emu", "emu")]


def make_env(**kwargs) -> RewardFnEnv:
    return RewardFnEnv(TASKS, exact_match, render_mode="ansi", **kwargs)


def test_reward_fn_env_in_a_few_lines_passes_check_env() -> None:
    env = make_env()
    check_env(env, skip_render_check=True)  # no spec outside gym.make; render is tested below
    prompt, info = env.reset(options={"task_id": 2})
    assert prompt == "Écris « été »" and info["task_id"] == 2
    _, reward, terminated, truncated, info = env.step(" été\n")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] is True and info["reason"] == "correct" and info["reference"] == "été"


def test_subclass_in_a_few_lines() -> None:
    class Reverse(TextBanditEnv):
        def verify(self, task: Task, completion: str) -> VerifyResult:
            if completion == task.reference[::-1]:
                return VerifyResult.success(parsed=completion)
            return VerifyResult.fail("wrong", parsed=completion)

    env = Reverse([Task(prompt="Reverse 'abc'", reference="abc", id="rev-0")])
    env.reset(seed=0)
    assert env.step("cba")[1] == 1.0
    env.reset(options={"task_id": "rev-0"})
    _, reward, _, _, info = env.step("abc")
    assert reward == 0.0 and info["reason"] == "wrong" and info["parsed"] == "abc"


def test_seeded_task_choice_is_deterministic() -> None:
    env_a, env_b = make_env(), make_env()
    seq_a = [env_a.reset(seed=s)[1]["task_id"] for s in range(20)]
    seq_b = [env_b.reset(seed=s)[1]["task_id"] for s in range(20)]
    assert seq_a == seq_b
    assert len(set(seq_a)) > 1  # the seed actually chooses
    # Without a seed, successive resets continue the seeded stream reproducibly.
    env_a.reset(seed=7)
    env_b.reset(seed=7)
    assert [env_a.reset()[0] for _ in range(10)] == [env_b.reset()[0] for _ in range(10)]


def test_task_id_pins_a_group() -> None:
    env = make_env()
    prompts = {env.reset(seed=s, options={"task_id": 1})[0] for s in range(8)}
    assert prompts == {"Spell dog"}


@pytest.mark.parametrize("bad", [-1, 4, "no-such-id", 1.5j])
def test_bad_task_id_is_a_clear_error(bad) -> None:
    env = make_env()
    with pytest.raises((IndexError, KeyError, TypeError), match="task_id"):
        env.reset(options={"task_id": bad})


@pytest.mark.parametrize("action", [None, b"cat", 3, ["cat"]])
def test_non_str_action_raises_type_error_naming_str(action) -> None:
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="must be a str"):
        env.step(action)


def test_step_before_reset_and_after_the_episode_needs_reset() -> None:
    env = make_env()
    with pytest.raises(ResetNeeded):
        env.step("cat")
    env.reset(seed=0)
    env.step("cat")
    with pytest.raises(ResetNeeded):
        env.step("cat")
    # Through gym.make the OrderEnforcing wrapper says the same.
    gym.register("test/Spell-v0", entry_point=make_env)
    try:
        wrapped = gym.make("test/Spell-v0")
        with pytest.raises(ResetNeeded):
            wrapped.step("cat")
    finally:
        gym.registry.pop("test/Spell-v0")


def test_overlong_completion_scores_zero_without_calling_the_verifier() -> None:
    calls = []

    def reward_fn(completion: str, reference: str) -> bool:
        calls.append(completion)
        return True

    env = RewardFnEnv(TASKS, reward_fn, max_completion_length=100)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("x" * 101)
    assert reward == 0.0 and info["reason"] == "parse_failed" and "limit is 100" in info["message"]
    assert calls == []


def test_a_crashing_reward_fn_scores_zero_with_reason_error() -> None:
    env = RewardFnEnv(TASKS, lambda completion, reference: 1 / 0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("cat")
    assert reward == 0.0 and terminated and info["reason"] == "error"
    assert "ZeroDivisionError" in info["message"]


def test_render_ansi_shows_the_exchange() -> None:
    env = make_env()
    env.reset(options={"task_id": 0})
    assert "Spell cat" in env.render()
    env.step("cow")
    text = env.render()
    assert "completion: cow" in text and "reward: 0" in text and "wrong" in text


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        RewardFnEnv([], exact_match)
    with pytest.raises(TypeError, match="callable"):
        RewardFnEnv(TASKS, "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_mode"):
        RewardFnEnv(TASKS, exact_match, render_mode="human")
    with pytest.raises(TypeError, match="Task"):
        TextBanditEnv(["just a string"])  # type: ignore[list-item]


def test_unicode_text_space_membership_and_sampling() -> None:
    space = UnicodeText(max_length=10)
    assert space.contains("") and space.contains("π ≈ 3.14 ✓") and not space.contains("x" * 11)
    assert not space.contains(b"bytes") and not space.contains(None)
    space.seed(0)
    samples = [space.sample() for _ in range(50)]
    assert all(space.contains(s) and set(s) <= set(BROAD_CHARSET) for s in samples)
    assert any(not s.isascii() for s in samples)  # the charset really is broad
    assert UnicodeText(max_length=10) == space and UnicodeText(max_length=11) != space


def test_vector_env_same_step_autoreset() -> None:
    """One-step envs want SAME_STEP autoreset (NEXT_STEP wastes every other step on a reset)."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    vec = SyncVectorEnv([make_env, make_env], autoreset_mode=AutoresetMode.SAME_STEP)
    _, info = vec.reset(seed=0)
    answers = tuple(TASKS[i][1] for i in info["task_id"])
    _, rewards, terminated, _, info = vec.step(answers)
    assert rewards.tolist() == [1.0, 1.0] and terminated.all()
    assert info["final_info"]["correct"].tolist() == [True, True]
    vec.close()
