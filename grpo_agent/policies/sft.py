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
from torch import Tensor
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
    :param max_length: longest training sequence in tokens (prompt, completion and EOS); a
        longer example keeps the end of its prompt (where the question is) and then the start
        of its completion (TRL's ``SFTConfig.max_length``; None: no limit). It bounds the
        memory of a step: the tool and code envs' character-level examples reach ~3,000
        tokens, and one step of 32 of them took 130 s and several GB of attention on 2 CPU
        cores. 512 is the tiny model's ``max_position_embeddings``.
    :param micro_batch_size: examples per forward/backward pass; the gradients of a step's
        micro-batches are summed, weighted by their completion tokens, so the step is the same
        as one pass over the whole batch, in less memory (None: the whole batch at once).
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
    max_length: int | None = 512
    micro_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(
                f"max_length must be at least 2 tokens (a prompt token and a target), got {self.max_length}"
            )
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {self.micro_batch_size}")


def fit_to_length(prompt: list[int], completion: list[int], max_length: int | None) -> tuple[list[int], list[int]]:
    """``(prompt, completion)`` cut to ``max_length`` tokens in all: the prompt loses its
    start first (down to half the budget), then the completion its end.

    >>> fit_to_length([1, 2, 3, 4], [5, 6], 4)
    ([3, 4], [5, 6])
    >>> fit_to_length([1, 2, 3, 4], [5, 6, 7, 8, 9], 4)
    ([3, 4], [5, 6])
    """
    if max_length is None or len(prompt) + len(completion) <= max_length:
        return prompt, completion
    keep_prompt = max(max_length - len(completion), max_length // 2, 1)
    prompt = prompt[-keep_prompt:]
    return prompt, completion[: max_length - len(prompt)]


def _padded_batch(batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(input_ids, labels, attention_mask)`` of ``(prompt, completion)`` rows, right-padded
    (positions start at 0 in every row); labels are -100 (ignored) outside the completions."""
    width = max(len(p) + len(c) for p, c in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    attn = torch.zeros_like(ids)
    for row, (p, c) in enumerate(batch):
        seq = p + c
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, len(p) : len(seq)] = torch.tensor(c)
        attn[row, : len(seq)] = 1
    return ids, labels, attn


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
        encoded.append(fit_to_length(p, c, config.max_length))
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
        opt.zero_grad(set_to_none=True)
        loss = _accumulate_gradients(model, batch, tokenizer.pad_token_id, config.micro_batch_size, device)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss)
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


def _accumulate_gradients(
    model: PreTrainedModel,
    batch: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    micro_batch_size: int | None,
    device: str | torch.device,
) -> float:
    """Backpropagate the mean completion-token loss of ``batch``, in micro-batches of
    ``micro_batch_size`` rows; return the loss."""
    if micro_batch_size is None or micro_batch_size >= len(batch):
        ids, labels, attn = _padded_batch(batch, pad_id)
        out = model(input_ids=ids.to(device), attention_mask=attn.to(device), labels=labels.to(device))
        out.loss.backward()
        return float(out.loss.item())
    # The model's loss is a mean over a micro-batch's targets; weighting each by its share of
    # the step's targets makes the summed gradient that of the mean over the whole batch.
    total = sum(len(c) for _, c in batch)
    loss = 0.0
    for start in range(0, len(batch), micro_batch_size):
        part = batch[start : start + micro_batch_size]
        ids, labels, attn = _padded_batch(part, pad_id)
        out = model(input_ids=ids.to(device), attention_mask=attn.to(device), labels=labels.to(device))
        weighted = out.loss * (sum(len(c) for _, c in part) / total)
        weighted.backward()
        loss += float(weighted.item())
    return loss


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


#: Progress lines a long warm start prints when no live bar can be drawn (a log file).
PROGRESS_LINES = 10


#: The warm start's estimate waits for at least 3 steps, and for 10 steps or 10 seconds: the
#: first step carries one-time costs (the allocator's first blocks, lazy initialisation) that
#: made it 20x the pace of the rest on the main job, and the next few are still warming up, so
#: the pace is taken from the steps after the first once there are enough of them to mean it.
ESTIMATE_MIN_STEPS, ESTIMATE_STEPS, ESTIMATE_SECONDS = 3, 10, 10.0


def sft_progress_lines(total: int, every_tenth: bool = True, at_most: bool = False) -> Callable[[int, float], None]:
    """Prints, after the first few of ``total`` steps, how long they took and the time the whole
    budget will take at the pace of the steps after the first (``at_most``: the budget is a
    ceiling, as with a target accuracy); with ``every_tenth``, also a line at each tenth of the
    budget (where no live bar can be drawn, e.g. into a log file). Called as ``(step, loss)``."""
    import time

    started = time.perf_counter()
    first = 0.0
    estimated = total <= 1
    every = max(1, total // PROGRESS_LINES)

    def update(step: int, loss: float) -> None:
        nonlocal first, estimated
        done = step + 1
        elapsed = time.perf_counter() - started
        if done == 1:
            first = elapsed
        enough = done >= ESTIMATE_MIN_STEPS and (done >= ESTIMATE_STEPS or elapsed >= ESTIMATE_SECONDS)
        if every_tenth and done % every == 0:
            print(f"  SFT step {done}/{total}: loss {loss:.3f}, {_duration(elapsed)} so far", flush=True)
        if not estimated and (enough or done == total):
            estimated = True
            pace = (elapsed - first) / (done - 1)
            print(
                f"  SFT steps 1-{done} took {elapsed:.1f}s (the first {first:.1f}s): about "
                f"{_duration(first + pace * (total - 1))} for {'at most ' if at_most else ''}{total} steps",
                flush=True,
            )

    return update


def _duration(seconds: float) -> str:
    """``"42s"`` or ``"3.5 min"``."""
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"
