"""Supervised fine-tuning of a causal LM on an env's own tasks: the warm start RL needs.

A freshly initialised model knows nothing, and RL from zero reward learns nothing (every GRPO
group has the same reward 0). :func:`sft` trains on ``prompt -> reference answer`` pairs
written the way the env reads answers (:func:`reference_completion`, or the task's worked answer
when it has one); with ``SFTConfig(target_accuracy=...)`` it stops once greedy accuracy on
training questions it never saw (:func:`split_off_check_tasks`, :func:`greedy_accuracy`)
reaches the target, so that every seed starts RL from the same skill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from grpo_agent.policies.causal_lm import CausalLMPolicy


def render_chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text the policy conditions on for a one-turn ``prompt``: the chat template with a
    generation prompt when the tokenizer has one, else the prompt and a newline."""
    if getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        )
    return prompt + "\n"


def reference_completion(env: Any, task: Any) -> str:
    """The completion that states ``task``'s reference answer the way ``env`` reads answers.

    An env can define ``reference_completion(task) -> str``; otherwise a task with a worked
    answer (``task.meta["worked_answer"]``, e.g. Math-v0 level 6's ``861 168``) gets it,
    math-style envs ``\\boxed{reference}`` (read by every math extractor) and other envs the
    reference as text.
    """
    base = getattr(env, "unwrapped", env)
    custom: Callable[[Any], str] | None = getattr(base, "reference_completion", None)
    if callable(custom):
        return str(custom(task))
    worked = (getattr(task, "meta", None) or {}).get("worked_answer")
    if worked is not None:
        return str(worked)
    ref = task.reference
    if isinstance(ref, (int, float, str)) and "math" in type(base).__name__.lower():
        return f"\\boxed{{{ref}}}"
    return str(ref)


def sft_examples_from_env(env: Any, max_examples: int | None = None) -> list[tuple[str, str]]:
    """``(prompt, target completion)`` pairs from the env's own tasks (its ``tasks`` source).

    :param env: a :class:`~grpo_envs.core.TextBanditEnv` (wrapped or not); pass the training
        split so that held-out tasks stay unseen.
    :param max_examples: take only the first ``max_examples`` tasks (None: all of them).
    """
    base = getattr(env, "unwrapped", env)
    tasks = getattr(base, "tasks", None)
    if tasks is None:
        raise TypeError(
            f"{type(base).__name__} has no `tasks`; the tiny warm start needs a TextBanditEnv whose tasks it can read"
        )
    n = len(tasks) if max_examples is None else min(len(tasks), max_examples)
    return [(tasks[i].prompt, reference_completion(base, tasks[i])) for i in range(n)]


def split_off_check_tasks(env: Any, n_check: int, max_examples: int | None = None) -> tuple[list[Any], list[Any]]:
    """``(sft_tasks, check_tasks)``: the env's tasks, with ``n_check`` distinct questions set
    aside (the last ones) and every copy of those questions removed from the SFT tasks, so that
    accuracy on the check tasks measures questions the warm start has never seen.

    :param env: the (training-split) env whose tasks are split.
    :param n_check: how many distinct questions to set aside.
    :param max_examples: use only the env's first ``max_examples`` tasks.
    """
    base = getattr(env, "unwrapped", env)
    tasks = base.tasks
    n = len(tasks) if max_examples is None else min(len(tasks), max_examples)
    everything = [tasks[i] for i in range(n)]
    check: dict[str, Any] = {}
    for task in reversed(everything):
        if len(check) == n_check:
            break
        check.setdefault(task.prompt, task)
    kept = [t for t in everything if t.prompt not in check]
    if not kept or len(check) < n_check:
        raise ValueError(
            f"the env has {n} tasks, too few to set {n_check} distinct questions aside for the accuracy check "
            "and still train on the rest: give the env more tasks (num_tasks) or lower check_tasks"
        )
    return kept, list(check.values())[::-1]


def greedy_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, env: Any, tasks: Sequence[Any], max_new_tokens: int
) -> float:
    """Fraction of ``tasks`` that ``model`` answers correctly with greedy decoding, as ``env``
    verifies them (``env.verify(task, completion)``)."""
    base = getattr(env, "unwrapped", env)
    policy = CausalLMPolicy(None, None, model, tokenizer, device=model.device, max_new_tokens=max_new_tokens)
    correct = 0
    for start in range(0, len(tasks), 128):
        chunk = tasks[start : start + 128]
        actions = policy.sample([t.prompt for t in chunk], n=1, deterministic=True).actions
        correct += sum(bool(base.verify(t, a).correct) for t, a in zip(chunk, actions, strict=True))
    return correct / max(len(tasks), 1)


@dataclass(frozen=True)
class SFTConfig:
    """Budget of the supervised warm start.

    The default budget is deliberately short: on ``grpo/Math-v0`` at level 1 it leaves the
    tiny model with a partial held-out accuracy, which is the headroom GRPO is shown to use.
    With ``target_accuracy`` set, training stops at the first check (every ``check_every``
    steps) where greedy accuracy on ``check_tasks`` training questions kept out of the SFT
    data reaches the target, and ``steps`` is only the most it may take.

    :param steps: optimizer steps (with ``target_accuracy``: at most this many).
    :param batch_size: examples per step.
    :param lr: AdamW learning rate (linear warm-up over the first 10% of steps, then constant).
    :param weight_decay: AdamW weight decay.
    :param seed: seed of the batch order and the model's initialisation.
    :param target_accuracy: stop once greedy accuracy on the check questions reaches this
        (None: always take ``steps`` steps).
    :param check_every: steps between accuracy checks.
    :param check_tasks: distinct training questions set aside for the checks.
    :param warmup_steps: steps of linear learning-rate warm-up (None: 10% of ``steps``).
    """

    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    target_accuracy: float | None = None
    check_every: int = 25
    check_tasks: int = 200
    warmup_steps: int | None = None


def sft(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str]],
    config: SFTConfig = SFTConfig(),
    *,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    should_stop: Callable[[int], bool] | None = None,
) -> list[float]:
    """Supervised fine-tuning on ``(prompt, completion)`` pairs; the loss covers only the
    completion and its closing EOS token, never the prompt.

    :param model: the causal LM to train in place.
    :param tokenizer: its tokenizer (prompts are rendered with :func:`render_chat_prompt`).
    :param examples: the training pairs.
    :param config: the step budget and optimizer settings.
    :param device: where to train.
    :param on_step: called as ``on_step(step, loss)`` after every step (e.g. a progress bar).
    :param should_stop: called as ``should_stop(steps_done)`` every ``config.check_every``
        steps (with the model in eval mode); True ends the training there.
    :return: the loss of every step taken.
    """
    if not examples:
        raise ValueError("sft needs at least one (prompt, completion) example")
    cast(torch.nn.Module, model).to(device).train()
    encoded = []
    for prompt, target in examples:
        p = tokenizer(render_chat_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        c = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((p, c))
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 10 if config.warmup_steps is None else config.warmup_steps)

    def lr_at(step: int) -> float:
        # Linear warm-up, then constant: a decaying rate would make the warm start's accuracy
        # depend on the budget's end point, not only on how many steps were taken.
        return min(1.0, (step + 1) / warmup)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    losses: list[float] = []
    order = torch.randperm(len(encoded), generator=gen).tolist()
    cursor = 0
    for step in range(config.steps):
        batch = []
        for _ in range(config.batch_size):
            if cursor == len(order):
                order, cursor = torch.randperm(len(encoded), generator=gen).tolist(), 0
            batch.append(encoded[order[cursor]])
            cursor += 1
        width = max(len(p) + len(c) for p, c in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)  # -100: ignored by the loss
        attn = torch.zeros_like(ids)
        for row, (p, c) in enumerate(batch):  # right padding: positions start at 0 in every row
            seq = p + c
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, len(p) : len(seq)] = torch.tensor(c)
            attn[row, : len(seq)] = 1
        out = model(input_ids=ids.to(device), attention_mask=attn.to(device), labels=labels.to(device))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(out.loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
        if should_stop is not None and (step + 1) % config.check_every == 0:
            model.eval()
            stop = should_stop(step + 1)
            model.train()
            if stop:
                break
    model.eval()
    return losses


def sft_progress_bar(total: int) -> Callable[..., None]:
    """A tqdm bar for the warm start, advanced by ``(step, loss)`` calls; ``close=True`` closes
    it (a warm start that reaches its target stops before ``total``)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="warm start (SFT)", leave=False)

    def update(step: int, loss: float, close: bool = False) -> None:
        if close:
            bar.close()
            return
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step + 1 == total:
            bar.close()

    return update
