"""Building a language-model policy's network from Hugging Face parts.

A model by folder, hub name or object; its tokenizer, checked so that completions can end
and batches can be padded; every token id that ends a completion; LoRA adapters (peft); and
activation checkpointing under either of transformers' names for it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off for the block, then as they were: "Loading weights" bars
    would interleave with a training run's output, but the setting is process-wide and the
    user's own code may want it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_causal_lm(
    model: str | os.PathLike[str] | torch.nn.Module, dtype: torch.dtype, trust_remote_code: bool = False
) -> tuple[Any, str | None]:
    """``(network, name_or_path)`` from a folder written by ``save_pretrained``, a hub name, or a
    model object (cast to ``dtype``); ``name_or_path`` is where its tokenizer can be found, if known.

    :raises OSError: when nothing can be loaded from the name, with what to give instead.
    """
    from transformers import AutoModelForCausalLM

    if isinstance(model, (str, os.PathLike)):
        try:
            with no_progress_bars():
                network = AutoModelForCausalLM.from_pretrained(
                    str(model), dtype=dtype, trust_remote_code=trust_remote_code
                )
        except OSError as exc:
            raise OSError(
                f"could not load a causal LM from {str(model)!r}: give a folder written by save_pretrained, "
                f"a hub name reachable from this machine, or 'tiny' ({exc})"
            ) from exc
        return network, str(model)
    cast_model: Any = model.to(dtype)
    return cast_model, getattr(getattr(cast_model, "config", None), "_name_or_path", None) or None


def load_tokenizer(tokenizer: Any, name_or_path: str | None, trust_remote_code: bool = False) -> Any:
    """The tokenizer given, or loaded by name (default: the model's own), with a pad token.

    :raises ValueError: no tokenizer can be found, or it has no EOS token (completions could never end).
    """
    from transformers import AutoTokenizer

    if tokenizer is None:
        if not name_or_path:
            raise ValueError("a model object was given without a tokenizer: pass tokenizer=...")
        tokenizer = name_or_path
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer), trust_remote_code=trust_remote_code)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token, so completions could never end; set tokenizer.eos_token")
    if tokenizer.pad_token_id is None:  # many base models ship without one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS plus the generation config's
    (chat models often end a turn with e.g. ``<|im_end|>`` rather than the EOS token)."""
    ids = {int(tokenizer.eos_token_id)}
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif isinstance(extra, (list, tuple)):
        ids.update(int(i) for i in extra)
    return sorted(ids)


def add_lora(model: Any, lora: Any) -> tuple[Any, Any]:
    """``(peft model, its LoraConfig)``: ``lora`` is a ``LoraConfig``, a dict of its fields over
    our defaults (r 8, alpha 16, every linear layer), or True for the defaults.

    :raises ImportError: when peft is not installed, with the extra to install.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ImportError("lora=... needs peft: pip install 'grpo-gym[lora]'") from None
    if isinstance(lora, LoraConfig):
        config = lora
    else:
        settings: dict[str, Any] = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}
        settings.update(dict(lora) if not isinstance(lora, bool) else {})
        config = LoraConfig(**settings)
    with warnings.catch_warnings():
        # peft asks transformers' deprecated `is_gradient_checkpointing`; nothing a user can change.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config), config


def enable_activation_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass instead of storing them (non-reentrant)."""
    # transformers >= 5.2x renamed the method; older releases only have the first name.
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()  # LoRA: frozen embeddings would cut the graph
