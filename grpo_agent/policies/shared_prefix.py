"""Run a group's shared context through the network once, not once per completion.

GRPO samples G completions of the same prompt, and scores them three times (sampling, the
policy's forward and backward, the frozen reference). Fed row by row, the prompt is computed
G times each time, although every row's prompt tokens see exactly the same thing: causal
attention never lets a context token look at the completion after it. With prompts longer
than the answers (math word problems, tool specs, chat templates), most of the compute of a
GRPO step is that repetition.

Here the distinct contexts go through the network once, with the KV cache on; the cache
is then gathered to one row per completion (``index_select``, differentiable, so gradients of
every completion flow back into the one shared prompt computation), and the completions run
on top of it. The result equals the row-by-row forward up to float rounding (tests hold it
to 1e-5), and the policy falls back to the row-by-row path wherever the trick does not apply:
no repeated context, gradient checkpointing (transformers turns the cache off), or a model
whose cache is not a plain :class:`transformers.DynamicCache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from grpo_agent.policies.lm_ops import cache_kwargs, output_cache, position_ids_from_mask


def group_rows(contexts: Sequence[Sequence[int]]) -> tuple[list[list[int]], Tensor]:
    """The distinct contexts, in order of first appearance, and ``index``: row ``i``'s context
    is ``unique[index[i]]``."""
    first: dict[tuple[int, ...], int] = {}
    unique: list[list[int]] = []
    index = []
    for row in contexts:
        key = tuple(row)
        slot = first.get(key)
        if slot is None:
            slot = first[key] = len(unique)
            unique.append(list(row))
        index.append(slot)
    return unique, torch.as_tensor(index, dtype=torch.long)


def worth_sharing(n_rows: int, n_unique: int) -> bool:
    """Share only when contexts repeat: with every context distinct the gather is pure cost."""
    return n_unique < n_rows


def gather_cache(cache: Any, index: Tensor) -> Any | None:
    """``cache`` with its batch rows gathered by ``index`` (in place; the same object), or None
    when the cache is not one this module knows how to gather exactly.

    Only transformers' plain dynamic cache qualifies: sliding-window, quantized, static or
    model-specific caches keep extra per-row state that a gather of keys and values would
    leave inconsistent.
    """
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:  # pragma: no cover - transformers is an agent dependency
        return None
    if type(cache) is not DynamicCache:
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    for layer in layers:
        layer.reorder_cache(index)  # the beam-search gather: index_select on keys and values
    return cache


def shared_prefix_logits(
    model: torch.nn.Module,
    ctx_ids: Tensor,
    ctx_attn: Tensor,
    index: Tensor,
    comp_ids: Tensor,
    comp_attn: Tensor,
) -> Tensor | None:
    """Logits ``(B, L, V)`` predicting each completion token (position ``t`` predicts token ``t``),
    from one forward over the ``U`` distinct contexts and one over the ``B`` completions.

    :param ctx_ids: ``(U, C)`` left-padded distinct contexts, ``ctx_attn`` their mask.
    :param index: ``(B,)`` row ``i``'s context is ``ctx_ids[index[i]]``.
    :param comp_ids: ``(B, L)`` right-padded completions, ``comp_attn`` their mask.
    :return: the raw (untempered) logits, or None when the model's cache cannot be shared
        (the caller then runs the plain forward; nothing has been changed).
    """
    device = comp_ids.device
    ctx_pos = position_ids_from_mask(ctx_attn)
    prefix = model(input_ids=ctx_ids, attention_mask=ctx_attn, position_ids=ctx_pos, use_cache=True, logits_to_keep=1)
    cache = output_cache(prefix)
    if cache is None or gather_cache(cache, index) is None:
        return None
    first = prefix.logits[:, -1:, :].index_select(0, index.to(device))  # predicts completion token 0
    length = comp_ids.shape[1]
    if length <= 1:
        return first
    # The last completion token predicts nothing we score: feed tokens 0..L-2 only.
    attn = torch.cat([ctx_attn.index_select(0, index.to(device)), comp_attn[:, : length - 1]], dim=1)
    positions = position_ids_from_mask(attn)[:, ctx_ids.shape[1] :]
    rest = model(
        input_ids=comp_ids[:, : length - 1],
        attention_mask=attn,
        position_ids=positions,
        use_cache=True,
        **cache_kwargs(model, cache),
    )
    return torch.cat([first, rest.logits], dim=1)


__all__ = ["gather_cache", "group_rows", "shared_prefix_logits", "worth_sharing"]
