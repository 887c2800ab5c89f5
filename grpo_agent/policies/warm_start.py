"""The tiny model's warm start, cached on disk: built, fine-tuned on an env's tasks, saved once.

The cache key hashes everything that determines the result (the model's shape, the SFT budget,
the characters, every training example and check question), so a second run with the same
inputs loads the saved folder at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch

from grpo_agent.policies.char_tokenizer import DEFAULT_CHARSET, build_char_tokenizer
from grpo_agent.policies.hf_loading import no_progress_bars
from grpo_agent.policies.sft import (
    SFTConfig,
    greedy_accuracy,
    reference_completion,
    render_chat_prompt,
    sft,
    sft_examples_from_env,
    sft_progress_bar,
    sft_progress_lines,
    split_off_check_tasks,
)
from grpo_agent.policies.tiny_model import TinyConfig, build_tiny_model


def default_cache_dir() -> Path:
    """Where warm-started tiny models are cached: ``$GRPO_GYM_CACHE``, else ``~/.cache/grpo-gym``."""
    return Path(os.environ.get("GRPO_GYM_CACHE") or Path.home() / ".cache" / "grpo-gym")


#: Bump when anything below changes what a cached warm start contains.
_WARM_START_VERSION = 2


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


def _cut_note(examples: Sequence[tuple[str, str]], tokenizer: Any, max_length: int | None) -> str:
    """``", N of them cut to M tokens"`` when examples exceed the SFT length limit (a character
    tokenizer: one token per character, plus the chat template's and the EOS)."""
    if max_length is None:
        return ""
    overhead = len(tokenizer(render_chat_prompt(tokenizer, ""), add_special_tokens=False)["input_ids"]) + 1
    cut = sum(len(p) + len(c) + overhead > max_length for p, c in examples)
    return f", {cut} of them cut to {max_length} tokens (SFTConfig.max_length)" if cut else ""


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
        bar = sft_progress_bar(sft_config.steps) if verbose and sys.stderr.isatty() else None
        lines = sft_progress_lines(sft_config.steps, bar is None, at_most=bool(check_tasks)) if verbose else None
        if verbose:
            print(
                f"tiny warm start: up to {sft_config.steps} SFT steps of {sft_config.batch_size} examples from "
                f"{len(examples)} tasks" + _cut_note(examples, tokenizer, sft_config.max_length)
            )

        def on_step(step: int, loss: float) -> None:
            if bar is not None:
                bar(step, loss)
            if lines is not None:
                lines(step, loss)

        steps_taken = len(
            sft(
                model,
                tokenizer,
                examples,
                sft_config,
                device=device,
                on_step=on_step if verbose else None,
                should_stop=reached_target if check_tasks else None,
            )
        )
        if bar is not None:
            bar(sft_config.steps - 1, float("nan"), close=True)
    cast(torch.nn.Module, model).to("cpu")
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        with no_progress_bars():  # "Writing model shards" bars would clutter the run's output
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
