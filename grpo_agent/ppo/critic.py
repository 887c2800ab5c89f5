"""PPO's critics: a value for every completion token.

:func:`make_critic` picks the one that fits the policy: :class:`TabularCritic` (a value per
state) for :class:`~grpo_agent.policies.tabular.TabularPolicy`, where a completion is one
token, and :class:`LMCritic` for language models.

For a language model, ``V_t`` estimates the return from the state *before* completion token ``t`` (the context and
the completion's first ``t`` tokens), so it is read from the same hidden state that predicts
token ``t``. Two layouts, as in RLHF practice:

- ``"separate"`` (default): its own copy of the policy's transformer (initialised from the
  policy, as InstructGPT initialises its value model from a trained model) plus a linear
  value head. Policy and critic never share gradients; memory is about twice the policy's.
- ``"shared"``: a value head on the policy's own last hidden states; one forward pass serves
  both, and the value loss also shapes the policy's features.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from grpo_agent.policies import sharding
from grpo_agent.policies.base import BasePolicy, CompletionBatch
from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.policies.lm_ops import position_ids_from_mask
from grpo_agent.policies.tabular import TabularPolicy

CriticLayout = Literal["separate", "shared"]
CRITIC_LAYOUTS: tuple[CriticLayout, ...] = get_args(CriticLayout)


def _backbone(model: Any) -> nn.Module:
    """The transformer under a causal LM's head (``LlamaModel`` under ``LlamaForCausalLM``),
    unwrapping a peft model first, so the critic copy carries no vocabulary projection."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) and base is not model else model


class LMCritic(nn.Module):
    """Per-token values of a :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`'s completions.

    :param policy: the policy whose completions are valued (its architecture and, for
        ``"separate"``, its current weights are copied).
    :param layout: ``"separate"`` or ``"shared"`` (see the module docstring).
    """

    def __init__(self, policy: CausalLMPolicy, layout: str = "separate") -> None:
        super().__init__()
        if layout not in CRITIC_LAYOUTS:
            raise ValueError(f"critic={layout!r} is not supported; choose one of {CRITIC_LAYOUTS}")
        if not isinstance(policy, CausalLMPolicy):
            raise TypeError(f"LMCritic values a CausalLMPolicy's tokens, got {type(policy).__name__}")
        self.layout = layout
        hidden = int(policy.model.config.hidden_size)
        self.backbone: nn.Module | None = None
        if layout == "separate":
            self.backbone = copy.deepcopy(_backbone(policy.model))
            for p in self.backbone.parameters():
                p.requires_grad_(True)
        # float32 at least (a bf16 value loses the small differences GAE takes), and float64 for a
        # float64 model: a float32 head's weight gradient sums the rows in float32, which rounds
        # differently when they are split over processes (the exact checks run in float64).
        dtype = torch.promote_types(policy.torch_dtype, torch.float32)
        self.head = nn.Linear(hidden, 1, device=policy.device, dtype=dtype)
        # A zero head starts every value at 0: the critic's first targets are the returns
        # themselves, with no random offset for the policy's advantages to absorb.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def shard(self, plan: sharding.ShardingPlan) -> None:
        """Shard the critic over the processes with the policy's plan (FSDP2): the separate
        transformer as the policy's is (each decoder layer one unit, the rest the root), and the
        value head as a unit of its own, for both layouts. The head is sharded rather than
        replicated so that every trained parameter is a ``DTensor``: the global gradient norm
        that clips policy and critic together cannot mix sharded and plain tensors. It is its
        own unit because it stays float32 when the backbone is bf16, and because the shared
        layout calls it outside any sharded module's forward."""
        if self.backbone is not None:
            sharding.shard_network(self.backbone, plan, offload=plan.offload_params)
        sharding.shard_whole(self.head, plan, offload=plan.offload_params)

    def values_from_hidden(self, hidden: Tensor, n_completion: int) -> Tensor:
        """``(B, L)`` values from the last hidden states ``(B, P + L, H)`` of a forward pass over
        ``[context | completion]``: position ``P - 1 + t`` values completion token ``t``."""
        width = hidden.shape[1] - n_completion
        states = hidden[:, width - 1 : width - 1 + n_completion, :]
        # rows of one matrix: the head's output is then a fresh tensor, not a view (FSDP warns
        # about views coming out of a sharded module, whose in-place changes would skip its hooks)
        flat = states.reshape(-1, states.shape[-1]).to(self.head.weight.dtype)
        return self.head(flat).view(states.shape[:2])

    def forward(self, policy: CausalLMPolicy, batch: CompletionBatch) -> Tensor:
        """``(B, L)`` values of ``batch`` with the separate critic's own transformer."""
        if self.backbone is None:
            _, out = policy.forward_completions(batch, output_hidden_states=True)
            return self.values_from_hidden(out.hidden_states[-1], batch.token_ids.shape[1])
        ids, attn, _ = policy._inputs(batch)
        out = self.backbone(
            input_ids=ids, attention_mask=attn, position_ids=position_ids_from_mask(attn), use_cache=False
        )
        hidden: Any = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self.values_from_hidden(hidden, batch.token_ids.shape[1])


class TabularCritic(nn.Module):
    """``V(s)``: one learned value per state of a :class:`~grpo_agent.policies.tabular.TabularPolicy`.

    A tabular completion is a single token, so its only value is the state's. Values start at
    0, like the language-model critic's zero head.
    """

    layout = "separate"

    def __init__(self, policy: TabularPolicy) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.zeros(policy.n_states, dtype=policy.dtype, device=policy.logits.device))

    def shard(self, plan: sharding.ShardingPlan) -> None:
        """A value table is not sharded (nor is the tabular policy it goes with)."""
        raise NotImplementedError("FSDP is for language-model policies; a tabular critic is a small table")

    def forward(self, policy: TabularPolicy, batch: CompletionBatch) -> Tensor:
        """``(B, 1)`` values of the batch's states (one per completion token)."""
        return self.values[policy.state_index(batch.observations)].unsqueeze(1).expand_as(batch.log_probs)


def make_critic(policy: BasePolicy, layout: str = "separate") -> LMCritic | TabularCritic:
    """The critic for ``policy``: :class:`TabularCritic` or :class:`LMCritic` (``layout``
    ``"separate"`` or ``"shared"``; a table has nothing to share, so only ``"separate"``)."""
    if layout not in CRITIC_LAYOUTS:
        raise ValueError(f"critic={layout!r} is not supported; choose one of {CRITIC_LAYOUTS}")
    if isinstance(policy, TabularPolicy):
        if layout != "separate":
            raise ValueError("a TabularPolicy has no features to share: use critic='separate' (a value per state)")
        return TabularCritic(policy)
    if isinstance(policy, CausalLMPolicy):
        return LMCritic(policy, layout)
    raise TypeError(f"PPO has a critic for TabularPolicy and CausalLMPolicy, not for {type(policy).__name__}")
