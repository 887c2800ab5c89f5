"""CausalLMPolicy: exact log-probs and masks, the reference policy, persistence, and GRPO on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.policies.base import CompletionBatch
from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.policies.tiny import (
    TinyConfig,
    TinyPolicy,
    build_char_tokenizer,
    build_tiny_model,
)
from grpo_envs import RewardFnEnv, Task

SMALL = TinyConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
PROMPTS = ["What is 1 + 1?", "Compute 12 - 7, then tell me a long story about it."]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_policy(**kwargs) -> CausalLMPolicy:
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, SMALL, seed=0)
    # A larger EOS logit makes some completions end early and others run to the limit, so
    # every batch mixes finished, padded and truncated rows.
    with torch.no_grad():
        model.model.embed_tokens.weight[tok.eos_token_id] *= 8
    kwargs.setdefault("max_new_tokens", 10)
    return CausalLMPolicy(None, None, model, tok, device="cpu", **kwargs)


def test_sampler_log_probs_equal_a_fresh_forward_pass():
    torch.manual_seed(0)
    policy = make_policy(temperature=0.7, top_p=0.9)
    batch = policy.sample(PROMPTS, n=4)
    with torch.no_grad():
        fresh = policy.log_probs(batch).log_probs
    assert torch.allclose(fresh[batch.mask], batch.log_probs[batch.mask], atol=1e-5)
    assert (batch.log_probs[~batch.mask] == 0).all()


def test_masks_cover_exactly_the_tokens_up_to_the_first_eos():
    torch.manual_seed(1)
    policy = make_policy()
    batch = policy.sample(PROMPTS, n=8)
    eos, pad = policy.tokenizer.eos_token_id, policy.tokenizer.pad_token_id
    lengths = batch.mask.sum(1)
    assert 0 < lengths.min() < lengths.max() == 10  # the batch mixes ended and truncated rows
    for row, mask, n, truncated in zip(batch.token_ids, batch.mask, lengths.tolist(), batch.truncated):
        assert mask[:n].all() and not mask[n:].any()  # a prefix: nothing counts after it
        assert (row[n:] == pad).all()
        assert bool(truncated) == (row[n - 1] != eos)  # ended rows end on their EOS, which counts
        assert (row[: n - 1] != eos).all()
    # The prompt is context, not part of the completion tensor.
    assert (
        batch.extras["context_ids"][0][-len("1 + 1?\n") :]
        == policy.tokenizer("1 + 1?\n", add_special_tokens=False)["input_ids"]
    )


def test_padding_a_batch_differently_gives_identical_log_probs():
    torch.manual_seed(2)
    policy = make_policy()
    batch = policy.sample(PROMPTS, n=4)
    short = batch.index([0])  # the short prompt alone: no context padding
    mixed = CompletionBatch.concatenate(
        [batch.index([5, 6]), batch.index([0])], pad_token_id=policy.tokenizer.pad_token_id
    )
    with torch.no_grad():
        alone = policy.log_probs(short).log_probs[0]
        together = policy.log_probs(mixed).log_probs[2]
        ref_alone = policy.reference_log_probs(short)[0]
    n = int(short.mask.sum())
    assert mixed.token_ids.shape[1] >= short.token_ids.shape[1]
    assert torch.allclose(alone[:n], together[:n], atol=1e-5)
    assert torch.allclose(ref_alone[:n], alone[:n], atol=1e-5)


def _sample_score_and_grad(policy: CausalLMPolicy, prompts: list[str], n: int, seed: int):
    """Sample, score, backpropagate and take reference log-probs; also returns the row count
    of every context forward (one that starts from an empty cache) the network ran."""
    context_rows: list[int] = []
    policy.model.register_forward_pre_hook(
        lambda _m, _a, kw: (
            context_rows.append(kw["input_ids"].shape[0])
            if kw.get("cache", kw.get("past_key_values")) is None
            else None
        ),
        with_kwargs=True,
    )
    policy.seed(seed)
    batch = policy.sample(prompts, n=n)
    policy.train()
    scored = policy.log_probs(batch).log_probs
    scored[batch.mask].sum().backward()
    grads = [p.grad.clone() for p in policy.parameters()]
    return batch, scored.detach(), policy.reference_log_probs(batch), grads, context_rows


def test_shared_prefix_changes_nothing_but_the_compute():
    # Each distinct prompt goes through the network once and its KV cache is shared by its G
    # completions: sampled tokens, log-probs, reference log-probs and gradients must be those
    # of the one-row-per-completion forward (prompts of different lengths: padding differs).
    prompts = [PROMPTS[1], PROMPTS[0], PROMPTS[1]]  # a repeated prompt among distinct ones
    shared = _sample_score_and_grad(make_policy(), prompts, n=4, seed=3)
    plain = _sample_score_and_grad(make_policy(share_prefix=False), prompts, n=4, seed=3)
    (batch, scored, ref, grads, rows), (batch0, scored0, ref0, grads0, rows0) = shared, plain
    assert rows == [2, 2, 2] and rows0 == [12, 12, 12]  # sample, score, reference: 2 prompts, not 12 rows
    assert batch.actions == batch0.actions and torch.equal(batch.mask, batch0.mask)
    assert torch.allclose(batch.log_probs, batch0.log_probs, atol=1e-5)
    assert torch.allclose(scored[batch.mask], scored0[batch.mask], atol=1e-5)
    assert torch.allclose(scored[batch.mask], batch.log_probs[batch.mask], atol=1e-5)
    assert torch.allclose(ref[batch.mask], ref0[batch.mask], atol=1e-5)
    for a, b in zip(grads, grads0):
        assert torch.allclose(a, b, atol=1e-5)


def test_shared_prefix_falls_back_for_caches_it_cannot_gather():
    # A sliding-window cache keeps per-row state beyond keys and values: the policy must notice
    # and score row by row, giving the same numbers as with sharing off.
    from transformers import MistralConfig, MistralForCausalLM

    tok = build_char_tokenizer()
    config = MistralConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        sliding_window=8,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    results = []
    for share in (True, False):
        torch.manual_seed(0)
        model = MistralForCausalLM(config)
        policy = CausalLMPolicy(None, None, model, tok, device="cpu", max_new_tokens=6, share_prefix=share)
        results.append(_sample_score_and_grad(policy, PROMPTS, n=3, seed=4))
    (batch, scored, ref, _, rows), (batch0, scored0, ref0, _, rows0) = results
    # sharing is tried once per network, then each runs one row per completion
    assert rows == [2, 6, 6, 2, 6] and rows0 == [6, 6, 6]
    assert batch.actions == batch0.actions
    assert torch.allclose(scored[batch.mask], scored0[batch.mask], atol=1e-5)
    assert torch.allclose(scored[batch.mask], batch.log_probs[batch.mask], atol=1e-5)
    assert torch.allclose(ref[batch.mask], ref0[batch.mask], atol=1e-5)


def test_greedy_decoding_is_the_argmax_of_the_forward_pass():
    policy = make_policy(max_new_tokens=6)
    first = policy.sample(PROMPTS, n=1, deterministic=True)
    second = policy.sample(PROMPTS, n=1, deterministic=True)
    assert first.actions == second.actions
    with torch.no_grad():
        logits, _ = policy.forward_completions(first)
    argmax = logits.argmax(-1)
    assert torch.equal(argmax[first.mask], first.token_ids[first.mask])


def test_reference_stays_at_the_initial_weights_and_survives_state_dict():
    torch.manual_seed(3)
    policy = make_policy()
    batch = policy.sample(PROMPTS, n=2)
    with torch.no_grad():
        initial = policy.reference_log_probs(batch)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    policy.log_probs(batch).log_probs[batch.mask].sum().backward()
    optimizer.step()
    with torch.no_grad():
        moved = policy.log_probs(batch).log_probs
        assert not torch.allclose(moved[batch.mask], initial[batch.mask], atol=1e-4)
        assert torch.equal(policy.reference_log_probs(batch), initial)
    clone = make_policy()
    clone.load_state_dict(policy.state_dict())
    with torch.no_grad():
        assert torch.equal(clone.reference_log_probs(batch), initial)
        assert torch.equal(clone.log_probs(batch).log_probs, moved)


def test_continue_turn_masks_environment_tokens_and_keeps_log_probs_exact():
    torch.manual_seed(4)
    policy = make_policy(max_new_tokens=5)
    batch = policy.sample(PROMPTS[:1], n=2)
    longer = policy.continue_turn(batch, ["<tool_response>42</tool_response>", None])
    env_tokens = policy.encode_env_turn("<tool_response>42</tool_response>")
    n0 = int(batch.mask[0].sum())
    assert longer.token_ids[0, n0 : n0 + len(env_tokens)].tolist() == env_tokens
    assert not longer.mask[0, n0 : n0 + len(env_tokens)].any()  # the env's tokens never count
    assert longer.mask[0, n0 + len(env_tokens)]  # the policy's next turn does
    assert torch.equal(longer.token_ids[1, : batch.token_ids.shape[1]], batch.token_ids[1])  # untouched row
    with torch.no_grad():
        fresh = policy.log_probs(longer).log_probs
    assert torch.allclose(fresh[longer.mask], longer.log_probs[longer.mask], atol=1e-5)


def test_bad_settings_fail_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="temperature"):
        make_policy(temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        make_policy(top_p=1.5)
    with pytest.raises(OSError, match="could not load a causal LM"):
        CausalLMPolicy(None, None, str(tmp_path / "nothing-here"), device="cpu")
    with pytest.raises(RuntimeError, match="reference='none'"):
        make_policy(reference="none").reference_log_probs(make_policy().sample(PROMPTS[:1]))


def test_save_pretrained_round_trips(tmp_path):
    torch.manual_seed(5)
    policy = make_policy()
    policy.save_pretrained(tmp_path / "model")
    again = CausalLMPolicy.from_pretrained(tmp_path / "model", device="cpu")
    batch = policy.sample(PROMPTS, n=2)
    with torch.no_grad():
        assert torch.allclose(policy.log_probs(batch).log_probs, again.log_probs(batch).log_probs, atol=1e-6)
    assert again.max_new_tokens == policy.max_new_tokens


def digit_fraction(text: str, reference: object) -> float:
    """A dense reward: the share of digits in the completion (every group has some spread)."""
    return sum(c.isdigit() for c in text) / max(len(text), 1)


def test_grpo_updates_a_tiny_policy_with_finite_metrics_and_round_trips(tmp_path):
    env = RewardFnEnv([Task(f"Write digits {i}", None, id=f"t{i}") for i in range(6)], digit_fraction)
    policy = TinyPolicy(env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=8)
    before = [p.detach().clone() for p in policy.parameters()]
    model = GRPO(policy, env, learning_rate=1e-2, group_size=4, n_groups=3, beta=0.04, seed=0)
    model.learn(total_timesteps=24)
    values = model.logger.name_to_value
    assert model._n_updates == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    assert (
        np.isfinite(values["train/loss"]) and np.isfinite(values["train/kl"]) and np.isfinite(values["train/grad_norm"])
    )
    model.save(tmp_path / "agent")
    loaded = GRPO.load(tmp_path / "agent", env=env, device="cpu")
    batch = policy.sample(["Write digits 1"], n=3)
    with torch.no_grad():
        assert torch.equal(loaded.policy.log_probs(batch).log_probs, policy.log_probs(batch).log_probs)
        assert torch.equal(loaded.policy.reference_log_probs(batch), policy.reference_log_probs(batch))


def test_lora_trains_only_adapters_and_uses_the_base_as_reference():
    pytest.importorskip("peft", reason="LoRA is the optional 'lora' extra")
    torch.manual_seed(6)
    policy = make_policy(lora={"r": 4})
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = policy.sample(PROMPTS, n=2)
    with torch.no_grad():
        # LoRA's B matrices start at zero: adapted and base policies agree before training.
        assert torch.allclose(
            policy.reference_log_probs(batch), policy.log_probs(batch).log_probs * batch.mask, atol=1e-5
        )


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(7)
    plain, checkpointed = make_policy(), make_policy(gradient_checkpointing=True)
    batch = plain.sample(PROMPTS, n=2)
    grads = []
    for policy in (plain, checkpointed):
        policy.train()
        policy.log_probs(batch).log_probs[batch.mask].sum().backward()
        grads.append([p.grad.clone() for p in policy.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_bfloat16_weights_sample_and_score_consistently():
    torch.manual_seed(8)
    policy = make_policy(dtype="bfloat16")
    assert next(policy.model.parameters()).dtype == torch.bfloat16
    batch = policy.sample(PROMPTS, n=2)
    with torch.no_grad():
        fresh = policy.log_probs(batch).log_probs
    assert batch.log_probs.dtype == torch.float32 and torch.isfinite(fresh).all()
    # bf16 keeps ~3 significant digits: the learner and the sampler agree to that precision.
    assert torch.allclose(fresh[batch.mask], batch.log_probs[batch.mask], atol=0.1)
