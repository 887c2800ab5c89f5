"""The built-in ``"tiny"`` policy: a small transformer and a character tokenizer, built in code.

Nothing here downloads anything. :func:`build_char_tokenizer` makes a Hugging Face fast
tokenizer whose vocabulary is one token per printable ASCII character, and
:func:`build_tiny_model` a ~0.9M-parameter Llama-architecture causal LM from a
``transformers`` config. Both save and load with ``save_pretrained`` / ``from_pretrained``,
so a saved tiny model is loaded by :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`
exactly like any Hugging Face model on disk.

A freshly initialised model knows nothing, and RL from zero reward learns nothing (every
GRPO group has the same reward 0). :func:`warm_start_tiny` therefore fine-tunes it with
supervised learning (:func:`sft`) on the env's own training tasks, prompt -> reference
answer written the way the env's answer extractor reads it (or the task's worked answer when
it has one), for a deliberately short budget: the result answers some tasks correctly,
leaving room for RL to improve it. The budget is either a fixed number of steps or, with
``SFTConfig(target_accuracy=...)``, "until greedy accuracy on training questions the warm
start has not seen reaches the target": a fixed budget leaves some seeds far weaker than
others, a target gives every seed the same starting skill. The warm-started model is cached
on disk, keyed by a hash of everything that determines it.

Example::

    >>> import gymnasium as gym, grpo_envs
    >>> from grpo_agent.policies.tiny import build_char_tokenizer
    >>> tok = build_char_tokenizer()
    >>> tok.decode(tok("1+1=2")["input_ids"], skip_special_tokens=True)
    '1+1=2'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

#: Special tokens, in id order: padding, beginning of sequence, end of sequence, unknown.
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

#: The character vocabulary: printable ASCII plus newline and tab (string.printable without
#: the vertical tab and form feed, which no task uses).
DEFAULT_CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c\r")

#: A minimal chat template, so that the tiny tokenizer goes through the same
#: ``apply_chat_template`` path as an instruction-tuned model: each user/tool turn is its text
#: and a newline; each assistant turn is its text closed by the end-of-sequence token.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}"
    "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
)


def default_cache_dir() -> Path:
    """Where warm-started tiny models are cached: ``$GRPO_GYM_CACHE``, else ``~/.cache/grpo-gym``."""
    return Path(os.environ.get("GRPO_GYM_CACHE") or Path.home() / ".cache" / "grpo-gym")


#: Bump when anything below changes what a cached warm start contains.
_WARM_START_VERSION = 2


def build_char_tokenizer(charset: str = DEFAULT_CHARSET) -> PreTrainedTokenizerFast:
    """A character-level Hugging Face fast tokenizer: one token per character of ``charset``.

    :param charset: the characters that get their own token; any other character becomes
        ``<unk>``. Ids 0-3 are ``<pad> <bos> <eos> <unk>``.
    :return: a ``PreTrainedTokenizerFast`` with left padding (what batched generation needs),
        a BOS token prepended by ``tokenizer(text)``, and :data:`TINY_CHAT_TEMPLATE`.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    chars = list(dict.fromkeys(charset))  # de-duplicate, keep order
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Every character is its own pre-token; [\s\S] also matches newlines.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A $B", special_tokens=[(BOS_TOKEN, vocab[BOS_TOKEN])]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        padding_side="left",
    )
    hf.chat_template = TINY_CHAT_TEMPLATE
    return hf


@dataclass(frozen=True)
class TinyConfig:
    """Shape of the built-in tiny transformer (a Llama architecture: RoPE, RMSNorm, SwiGLU).

    The defaults give ~0.87M parameters: small enough that sampling, scoring and an update
    on 64 completions take well under a second on 2 CPU cores.

    :param hidden_size: width of the residual stream.
    :param num_hidden_layers: number of transformer blocks.
    :param num_attention_heads: attention heads per block.
    :param intermediate_size: width of the SwiGLU feed-forward layer.
    :param max_position_embeddings: longest sequence (prompt + completion) in tokens.
    """

    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    max_position_embeddings: int = 512


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase, config: TinyConfig = TinyConfig(), seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised tiny causal LM sized to ``tokenizer``'s vocabulary.

    :param tokenizer: gives the vocabulary size and the pad/bos/eos ids.
    :param config: the model's shape.
    :param seed: seed of the weight initialisation (the global torch RNG is left untouched).
    """
    hf_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(hf_config)
    # Generation defaults that match how the policy samples (no hidden top-k).
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


# -- supervised warm start --------------------------------------------------------------------


def render_chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text the policy conditions on for a one-turn ``prompt``: the chat template with a
    generation prompt when the tokenizer has one, else the prompt and a newline."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
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
    from grpo_agent.policies.causal_lm import CausalLMPolicy  # causal_lm imports this module

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
    model.to(device).train()
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


def warm_start_key(
    examples: Sequence[tuple[str, str]],
    tiny: TinyConfig,
    sft_config: SFTConfig,
    charset: str,
    check: Sequence[tuple[str, str]] = (),
) -> str:
    """Hash of everything that determines a warm-started tiny model (its cache key): the
    shape, the budget, the characters, every training example and every check question."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "v": _WARM_START_VERSION,
                "tiny": asdict(tiny),
                "sft": asdict(sft_config),
                "charset": charset,
                "torch": torch.__version__.split("+")[0],
            },
            sort_keys=True,
        ).encode()
    )
    for prompt, target in examples:
        h.update(prompt.encode("utf-8", "surrogatepass") + b"\x00" + target.encode("utf-8", "surrogatepass") + b"\x01")
    if check:
        h.update(b"\x02check")
        for prompt, reference in check:
            h.update(prompt.encode("utf-8", "surrogatepass") + b"\x00" + reference.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


def warm_start_tiny(
    env: Any,
    *,
    tiny: TinyConfig = TinyConfig(),
    sft_config: SFTConfig = SFTConfig(),
    charset: str = DEFAULT_CHARSET,
    max_examples: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    verbose: int = 0,
    max_new_tokens: int = 16,
) -> Path:
    """Build the tiny model, fine-tune it on ``env``'s tasks, save it; return its folder.

    The folder (a ``save_pretrained`` model + tokenizer, loadable by path like any Hugging
    Face model) is cached under ``cache_dir/tiny/<key>``, where the key hashes the model
    shape, the SFT budget, the character set and every training example: a second call with
    the same inputs returns at once. The folder is written to a temporary name and renamed
    into place, so an interrupted warm start never leaves a half-written cache entry.

    :param env: the env whose (training) tasks supervise the warm start.
    :param tiny: the model's shape.
    :param sft_config: the warm start's budget (``steps=0`` gives the untrained model).
    :param charset: the tokenizer's characters.
    :param max_examples: use only the env's first ``max_examples`` tasks.
    :param cache_dir: cache root (default ``$GRPO_GYM_CACHE`` or ``~/.cache/grpo-gym``).
    :param device: where to train.
    :param verbose: 1 prints what is being done and how long it took.
    :param max_new_tokens: longest greedy answer in the accuracy checks (``target_accuracy``).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" bars would clutter the run's output
    base = getattr(env, "unwrapped", env)
    check_tasks: list[Any] = []
    if sft_config.target_accuracy is None:
        examples = sft_examples_from_env(env, max_examples)
    else:
        kept, check_tasks = split_off_check_tasks(env, sft_config.check_tasks, max_examples)
        examples = [(t.prompt, reference_completion(base, t)) for t in kept]
    key = warm_start_key(examples, tiny, sft_config, charset, [(t.prompt, str(t.reference)) for t in check_tasks])
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / "tiny" / key
    if (final / "config.json").exists():
        if verbose:
            print(f"tiny warm start: cached at {final}")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tokenizer = build_char_tokenizer(charset)
    model = build_tiny_model(tokenizer, tiny, seed=sft_config.seed)
    checks: list[tuple[int, float]] = []

    def reached_target(steps_done: int) -> bool:
        accuracy = greedy_accuracy(model, tokenizer, env, check_tasks, max_new_tokens)
        checks.append((steps_done, accuracy))
        if verbose >= 2:
            print(f"  SFT step {steps_done}: greedy accuracy {accuracy:.1%} on {len(check_tasks)} unseen questions")
        return accuracy >= float(sft_config.target_accuracy or 0.0)

    steps_taken = 0
    if sft_config.steps > 0:
        # A live bar only on a terminal: in a log file every redraw would be a new line.
        bar = _sft_progress(sft_config.steps) if verbose and sys.stderr.isatty() else None
        steps_taken = len(
            sft(
                model,
                tokenizer,
                examples,
                sft_config,
                device=device,
                on_step=(lambda s, loss: bar(s, loss)) if bar else None,
                should_stop=reached_target if check_tasks else None,
            )
        )
        if bar is not None:
            bar(sft_config.steps - 1, float("nan"), close=True)
    model.to("cpu")
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "warm_start.json").write_text(
            json.dumps(
                {
                    "tiny": asdict(tiny),
                    "sft": asdict(sft_config),
                    "n_examples": len(examples),
                    "env": getattr(getattr(env, "spec", None), "id", None),
                    "steps_taken": steps_taken,
                    "check_accuracy": checks,
                },
                indent=2,
            )
        )
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same warm start first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        reached = (
            f" (greedy accuracy {checks[-1][1]:.1%} on {len(check_tasks)} unseen training questions, "
            f"target {sft_config.target_accuracy:.0%})"
            if checks
            else ""
        )
        print(
            f"tiny warm start: {steps_taken} SFT steps on {len(examples)} tasks{reached} in "
            f"{time.perf_counter() - start:.1f}s, saved to {final}"
        )
    return final


def _sft_progress(total: int) -> Callable[..., None]:
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


# -- the policy -------------------------------------------------------------------------------


def _causal_lm_policy() -> type:
    # Imported late: causal_lm imports this module's helpers.
    from grpo_agent.policies.causal_lm import CausalLMPolicy

    return CausalLMPolicy


class TinyPolicy(_causal_lm_policy()):  # type: ignore[misc]
    """The built-in ``"tiny"`` policy: :func:`build_tiny_model` behind a
    :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`, warm-started on ``env``.

    ``GRPO("tiny", env)`` builds it with the env; built without one (as when a saved agent is
    loaded, whose weights then replace the random ones) it is the untrained network.

    :param observation_space: the env's observation space.
    :param action_space: the env's action space.
    :param env: the env (its training tasks) to warm-start on; None for no warm start.
    :param sft_steps: warm-start budget in optimizer steps (default :class:`SFTConfig`'s);
        0 skips the warm start. With ``sft_config``: overrides its ``steps``.
    :param sft_config: the whole warm-start configuration, as an :class:`SFTConfig` or a dict
        of its fields (e.g. ``{"target_accuracy": 0.3, "steps": 2000}``); its ``seed`` is
        replaced by ``seed``.
    :param seed: seed of the initialisation and of the SFT batch order.
    :param tiny_config: the network's shape, as a :class:`TinyConfig` or a dict of its fields.
    :param charset: the tokenizer's characters.
    :param cache_dir: warm-start cache root (default ``$GRPO_GYM_CACHE`` or ``~/.cache/grpo-gym``).
    :param verbose: 1 reports the warm start.
    :param kwargs: :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`'s keyword arguments;
        ``max_new_tokens`` defaults to 16 and ``device`` to ``"cpu"`` (a 0.9M-parameter model
        is faster on the CPU than the launch overhead of a GPU).
    """

    #: The algorithms pass their env to policies that ask for it: the warm start reads its tasks.
    needs_env = True

    def __init__(
        self,
        observation_space: Any = None,
        action_space: Any = None,
        env: Any = None,
        *,
        sft_steps: int | None = None,
        sft_config: SFTConfig | dict[str, Any] | None = None,
        seed: int = 0,
        tiny_config: TinyConfig | dict[str, Any] | None = None,
        charset: str = DEFAULT_CHARSET,
        cache_dir: str | os.PathLike[str] | None = None,
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        if isinstance(tiny_config, dict):
            tiny_config = TinyConfig(**tiny_config)
        tiny_config = tiny_config or TinyConfig()
        kwargs.setdefault("max_new_tokens", 16)
        kwargs.setdefault("device", "cpu")
        kwargs.pop("model", None)  # the tiny network is rebuilt from tiny_config, never loaded by name
        fields = asdict(sft_config) if isinstance(sft_config, SFTConfig) else dict(sft_config or {})
        fields["seed"] = seed
        if sft_steps is not None:
            fields["steps"] = int(sft_steps)
        sft_config = SFTConfig(**fields)
        if env is not None and sft_config.steps > 0:
            path = warm_start_tiny(
                env,
                tiny=tiny_config,
                sft_config=sft_config,
                charset=charset,
                cache_dir=cache_dir,
                verbose=verbose,
                max_new_tokens=kwargs["max_new_tokens"],
            )
            super().__init__(observation_space, action_space, path, **kwargs)
        else:
            tokenizer = build_char_tokenizer(charset)
            super().__init__(
                observation_space, action_space, build_tiny_model(tokenizer, tiny_config, seed), tokenizer, **kwargs
            )
        self.tiny_config, self.charset, self.sft_steps, self.tiny_seed = tiny_config, charset, sft_config.steps, seed
        self.name_or_path = "tiny"

    def get_constructor_parameters(self) -> dict[str, Any]:
        """Rebuild the same network (untrained; the saved ``state_dict`` restores the weights)."""
        params = super().get_constructor_parameters()
        params.pop("model", None)
        # sft_steps=0: a loaded agent gets its weights from the checkpoint, not from a new warm start.
        return {
            **params,
            "tiny_config": asdict(self.tiny_config),
            "charset": self.charset,
            "seed": self.tiny_seed,
            "sft_steps": 0,
        }
