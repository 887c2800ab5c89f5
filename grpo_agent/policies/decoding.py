"""The sampling loop of a Hugging Face causal LM: KV-cached decoding with temperature and top-p.

The log-probability recorded for every sampled token is under the *tempered* distribution
``softmax(logits / temperature)``, the same quantity the learner recomputes, so the
importance ratio is exactly 1 before the first update. This is the one piece a faster
rollout engine (e.g. vLLM) replaces; scoring and training never call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from grpo_agent.policies import shared_prefix
from grpo_agent.policies.lm_ops import cache_kwargs, output_cache, position_ids_from_mask, selective_log_softmax


def sample_top_p(logits: Tensor, top_p: float, generator: torch.Generator | None) -> Tensor:
    """One token per row from ``softmax(logits)`` restricted to its top-``p`` nucleus."""
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        drop = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def decode(
    model: Any,
    ids: Tensor,
    attn: Tensor,
    *,
    limit: int,
    temperature: float,
    sample: Callable[[Tensor], Tensor],
    eos_ids: Sequence[int],
    pad_id: int,
    deterministic: bool = False,
    index: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """One forward over the contexts, then one token per step reusing the KV cache; finished
    rows are fed padding (masked out) until every row is done or ``limit`` tokens were drawn.

    :param ids: ``(U, C)`` left-padded contexts, ``attn`` their attention mask.
    :param sample: draws one token per row from tempered logits ``(B, V)``, e.g. :func:`sample_top_p`.
    :param index: with it, row ``i`` continues ``ids[index[i]]``: the distinct contexts run once
        and their cache is gathered to one row per completion.
    :return: ``(tokens (B, L), tempered log-probs (B, L), done (B,))``, or None when ``index``
        is given and the model's cache cannot be gathered (nothing has been changed then).
    """
    positions = position_ids_from_mask(attn)
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, last = output_cache(out), out.logits[:, -1, :]
    if index is not None:
        if shared_prefix.gather_cache(cache, index) is None:
            return None
        last = last.index_select(0, index)
        attn, positions = attn.index_select(0, index), positions.index_select(0, index)
    eos = torch.as_tensor(list(eos_ids), device=ids.device)
    done = torch.zeros(attn.shape[0], dtype=torch.bool, device=ids.device)
    next_pos = positions[:, -1:] + 1
    tokens: list[Tensor] = []
    logps: list[Tensor] = []
    for step in range(limit):
        logits = last.float() / temperature
        tok = logits.argmax(-1) if deterministic else sample(logits)
        logp = selective_log_softmax(logits, tok)
        was_done = done
        tok = torch.where(was_done, torch.full_like(tok, pad_id), tok)
        tokens.append(tok)
        logps.append(torch.where(was_done, torch.zeros_like(logp), logp))
        done = was_done | torch.isin(tok, eos)
        if bool(done.all()) or step == limit - 1:
            break
        # The EOS itself is a real token; the padding fed to finished rows is masked out.
        attn = torch.cat([attn, (~was_done).long().unsqueeze(-1)], dim=-1)
        out = model(
            input_ids=tok.unsqueeze(-1),
            attention_mask=attn,
            position_ids=next_pos,
            use_cache=True,
            **cache_kwargs(model, cache),
        )
        cache, last = output_cache(out), out.logits[:, -1, :]
        next_pos = next_pos + 1
    return torch.stack(tokens, 1), torch.stack(logps, 1), done
