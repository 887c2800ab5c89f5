"""The built-in tiny policy: character tokenizer, model built from a config, cached SFT warm start."""

from __future__ import annotations

import os

import gymnasium as gym
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.policies import warm_start as warm_start_module
from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.policies.tiny import (
    SFTConfig,
    TinyConfig,
    TinyPolicy,
    build_char_tokenizer,
    build_tiny_model,
    reference_completion,
    sft,
    sft_examples_from_env,
    warm_start_tiny,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny models' matrices are too small for intra-op threads to pay off; on a busy
    2-core machine two threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = TinyConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def test_tokenizer_round_trips_text_and_has_its_special_tokens(tmp_path):
    tok = build_char_tokenizer()
    text = "What is 7 * 8?\nPut your final answer in \\boxed{}."
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1  # one token per character
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok("é")["input_ids"][1] == tok.unk_token_id
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids and again.padding_side == "left"
    assert (
        again.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
        == "<bos>hi\n"
    )


def test_tiny_model_is_small_and_loads_by_path_like_any_hf_model(tmp_path):
    tok = build_char_tokenizer()
    model = build_tiny_model(tok)
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n_params < 3e6
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), type(model))
    policy = CausalLMPolicy(None, None, str(tmp_path), device="cpu", max_new_tokens=3)
    assert len(policy.sample(["1+1"], n=2).actions) == 2


def test_sft_learns_its_targets_and_stops_with_eos():
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, SMALL, seed=0)
    examples = [("Q: a", "\\boxed{1}"), ("Q: b", "\\boxed{22}")]
    losses = sft(model, tok, examples, SFTConfig(steps=80, batch_size=4, lr=1e-2))
    assert losses[-1] < 0.1 * losses[0]
    policy = CausalLMPolicy(None, None, model, tok, device="cpu", max_new_tokens=16)
    batch = policy.sample([p for p, _ in examples], n=1, deterministic=True)
    assert batch.actions == ["\\boxed{1}", "\\boxed{22}"]
    assert not batch.truncated.any()  # both completions ended with EOS


def test_micro_batches_take_the_same_step_as_the_whole_batch():
    tok = build_char_tokenizer()
    examples = [("Q: a", "\\boxed{1}"), ("Q: bb", "\\boxed{22}"), ("Q: c", "x"), ("Q: dddd", "\\boxed{4444}")]
    models = [build_tiny_model(tok, SMALL, seed=0) for _ in range(2)]
    whole = sft(models[0], tok, examples, SFTConfig(steps=1, batch_size=4))
    parts = sft(models[1], tok, examples, SFTConfig(steps=1, batch_size=4, micro_batch_size=3))
    assert parts == pytest.approx(whole, rel=1e-5)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="micro_batch_size"):
        SFTConfig(micro_batch_size=0)


def test_long_examples_are_cut_to_max_length_keeping_the_question_and_the_answers_start():
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, SMALL, seed=0)
    seen = []
    original = model.forward

    def forward(**kwargs):
        seen.append(kwargs["input_ids"].shape[1])
        return original(**kwargs)

    model.forward = forward  # records the widths the SFT step ran on
    sft(model, tok, [("x" * 300 + "Q?", "a" * 100)], SFTConfig(steps=1, batch_size=2, max_length=64))
    assert seen == [64]


def test_math_env_reads_the_warm_start_target_as_correct():
    env = gym.make("grpo/Math-v0", levels=1, num_tasks=5)
    _, target = sft_examples_from_env(env)[0]
    assert target.startswith("\\boxed{")
    env.reset(options={"task_id": 0})
    assert env.step(target)[1] == 1.0
    assert reference_completion(env, env.unwrapped.tasks[1]) == f"\\boxed{{{env.unwrapped.tasks[1].reference}}}"


def test_warm_start_is_cached_by_content_and_written_atomically(tmp_path, monkeypatch):
    env = gym.make("grpo/Math-v0", levels=1, num_tasks=20)
    config = SFTConfig(steps=3, batch_size=4)
    path = warm_start_tiny(env, tiny=SMALL, sft_config=config, cache_dir=tmp_path)
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cached warm start must not train again")

    monkeypatch.setattr(warm_start_module, "sft", must_not_train)
    assert warm_start_tiny(env, tiny=SMALL, sft_config=config, cache_dir=tmp_path) == path

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(warm_start_module, "sft", interrupted)
    with pytest.raises(KeyboardInterrupt):
        warm_start_tiny(env, tiny=SMALL, sft_config=SFTConfig(steps=4, batch_size=4), cache_dir=tmp_path)
    # Only the finished entry exists: no half-written folder under any name.
    assert os.listdir(tmp_path / "tiny") == [path.name]


def test_tiny_policy_rebuilds_from_its_constructor_parameters(tmp_path):
    env = gym.make("grpo/Math-v0", levels=1, num_tasks=20)
    policy = TinyPolicy(
        env.observation_space, env.action_space, env, sft_steps=3, tiny_config=SMALL, cache_dir=tmp_path
    )
    params = policy.get_constructor_parameters()
    rebuilt = TinyPolicy(**params)
    rebuilt.load_state_dict(policy.state_dict())
    batch = policy.sample([env.reset(seed=0)[0]], n=3)
    with torch.no_grad():
        assert torch.equal(policy.log_probs(batch).log_probs, rebuilt.log_probs(batch).log_probs)


def test_prompts_keep_their_last_max_prompt_length_tokens():
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, SMALL)
    full = CausalLMPolicy(None, None, model, tok, device="cpu").encode_context("spec " * 40 + "What is 1 + 1?")
    policy = CausalLMPolicy(None, None, model, tok, device="cpu", max_new_tokens=2, max_prompt_length=8)
    batch = policy.sample(["spec " * 40 + "What is 1 + 1?"], n=2)
    assert [list(c) for c in batch.extras["context_ids"]] == [full[-8:]] * 2
    assert TinyPolicy(sft_steps=0, max_new_tokens=16).max_prompt_length == 512 - 16  # the network's positions
    with pytest.raises(ValueError, match="max_prompt_length"):
        CausalLMPolicy(None, None, build_tiny_model(tok, SMALL), tok, device="cpu", max_prompt_length=0)


def test_a_long_warm_start_prints_its_estimate_at_the_pace_after_the_first_step(capsys, monkeypatch):
    import time

    from grpo_agent.policies.sft import sft_progress_lines

    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])

    def run(total: int, first: float, pace: float, every_tenth: bool = True, at_most: bool = False) -> list[str]:
        now[0] = 0.0
        update = sft_progress_lines(total, every_tenth=every_tenth, at_most=at_most)
        for step in range(total):
            now[0] += first if step == 0 else pace
            update(step, 1.0)
        return capsys.readouterr().out.splitlines()

    # Slow steps (12 s of set-up, then 2 s a step): the estimate comes after 3 steps, 10 s having
    # passed: 12 s + 19 x 2 s = 50 s, not 20 x 12 s. Then a line at each tenth.
    lines = run(20, first=12.0, pace=2.0, at_most=True)
    assert lines[1] == "  SFT steps 1-3 took 16.0s (the first 12.0s): about 50s for at most 20 steps"
    assert [line.split(":")[0] for line in lines[:1] + lines[2:]] == [f"  SFT step {k}/20" for k in range(2, 21, 2)]
    # Fast steps (1 s, then 0.04 s) under a live bar (no tenths): it waits for 10 steps, then
    # 1 s + 1999 x 0.04 s = 81 s.
    lines = run(2000, first=1.0, pace=0.04, every_tenth=False)
    assert lines == ["  SFT steps 1-10 took 1.4s (the first 1.0s): about 81s for 2000 steps"]
