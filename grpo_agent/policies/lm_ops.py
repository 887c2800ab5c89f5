"""Tensor operations of language-model policies: padding, positions, log-probs, entropy, dtypes.

Plain functions of tensors (and of a model, for :func:`disable_dropout`), shared by
:mod:`~grpo_agent.policies.causal_lm`, :mod:`~grpo_agent.policies.shared_prefix` and PPO's
critic; they import torch only, so any of those can use them without importing the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> tuple[Tensor, Tensor]:
    """``(ids, attention_mask)`` of token lists left-padded to ``width`` (default: the longest)."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.as_tensor(list(row), dtype=torch.long)
            attn[i, width - len(row) :] = 1
    return ids, attn


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions that skip left padding: the first real token of every row is position 0.
    Without them, a left-padded row would be scored at shifted positions and its log-probs
    would depend on how much padding the batch happened to need."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def selective_log_softmax(logits: Tensor, index: Tensor) -> Tensor:
    """``log_softmax(logits)[..., index]`` without materialising the full log-softmax: the
    gathered logit minus the row's logsumexp, in float32 whatever the logits' dtype."""
    logits = logits.float()
    return logits.gather(-1, index.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def token_entropy(logits: Tensor, chunk: int = 4096) -> Tensor:
    """``(B, L)`` entropy of ``softmax(logits)`` per position, computed in chunks of rows so a
    large vocabulary does not need a second ``(B, L, V)`` float32 tensor all at once."""
    flat = logits.reshape(-1, logits.shape[-1])
    parts = []
    for start in range(0, flat.shape[0], chunk):
        x = flat[start : start + chunk].float()
        logp = torch.log_softmax(x, dim=-1)
        parts.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(parts).reshape(logits.shape[:-1]) if parts else logits.new_zeros(logits.shape[:-1])


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` -> bfloat16 on a GPU that supports it, float32 otherwise (CPU bf16 matmuls
    are slower than fp32 on most laptops and lose precision in the log-prob ratios)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float64": torch.float64,  # exact checks on the CPU (and what get_constructor_parameters writes back)
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in names:
        raise ValueError(f"dtype={dtype!r} is not one of 'auto', {sorted(names)}")
    return names[dtype]


def disable_dropout(model: torch.nn.Module) -> None:
    """Set every dropout probability to 0. With dropout on, the learner's log-probs would
    differ from the sampler's for the same weights, and the importance ratio would be noise
    around 1 instead of exactly 1 (TRL does the same)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(model, "config", None)
    for name in ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout"):
        if config is not None and isinstance(getattr(config, name, None), float):
            setattr(config, name, 0.0)


_FORWARD_TAKES_CACHE: dict[type, bool] = {}


def _forward_takes_cache(model_class: Any) -> bool:
    if model_class not in _FORWARD_TAKES_CACHE:  # one signature look-up per model class
        _FORWARD_TAKES_CACHE[model_class] = "cache" in inspect.signature(model_class.forward).parameters
    return _FORWARD_TAKES_CACHE[model_class]


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """The forward's keyword argument that passes a KV cache: ``cache`` in transformers releases
    that renamed it (they warn on ``past_key_values``), ``past_key_values`` in older ones."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper forwards **kwargs
    return {"cache" if _forward_takes_cache(type(base)) else "past_key_values": cache}


def output_cache(output: Any) -> Any:
    """The KV cache a forward with ``use_cache=True`` returned, under either release's name."""
    # Not output.get("cache", output.past_key_values): the fallback would be read (and warn) eagerly.
    if "cache" in output:
        return output["cache"]
    return output.past_key_values
