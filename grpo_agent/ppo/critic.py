"""The critic of the language-model PPO: a value for every completion token.

``V_t`` estimates the return from the state *before* completion token ``t`` (the context and
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
from typing import Any

import torch
from torch import Tensor, nn

from grpo_agent.policies.base import CompletionBatch
from grpo_agent.policies.causal_lm import CausalLMPolicy, position_ids_from_mask

CRITIC_LAYOUTS = ("separate", "shared")


def _backbone(model: nn.Module) -> nn.Module:
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
            raise TypeError(
                f"the language-model PPO needs a CausalLMPolicy, got {type(policy).__name__}; on Discrete envs "
                "use stable-baselines3's PPO through grpo_envs.wrappers.DiscreteChoiceWrapper"
            )
        self.layout = layout
        hidden = int(policy.model.config.hidden_size)
        self.backbone: nn.Module | None = None
        if layout == "separate":
            self.backbone = copy.deepcopy(_backbone(policy.model))
            for p in self.backbone.parameters():
                p.requires_grad_(True)
        self.head = nn.Linear(hidden, 1, device=policy.device, dtype=torch.float32)
        # A zero head starts every value at 0: the critic's first targets are the returns
        # themselves, with no random offset for the policy's advantages to absorb.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def values_from_hidden(self, hidden: Tensor, n_completion: int) -> Tensor:
        """``(B, L)`` values from the last hidden states ``(B, P + L, H)`` of a forward pass over
        ``[context | completion]``: position ``P - 1 + t`` values completion token ``t``."""
        width = hidden.shape[1] - n_completion
        states = hidden[:, width - 1 : width - 1 + n_completion, :]
        return self.head(states.float()).squeeze(-1)

    def forward(self, policy: CausalLMPolicy, batch: CompletionBatch) -> Tensor:
        """``(B, L)`` values of ``batch`` with the separate critic's own transformer."""
        if self.backbone is None:
            _, out = policy.forward_completions(batch, output_hidden_states=True)
            return self.values_from_hidden(out.hidden_states[-1], batch.token_ids.shape[1])
        ids, attn, _ = policy._inputs(batch)
        out = self.backbone(input_ids=ids, attention_mask=attn, position_ids=position_ids_from_mask(attn), use_cache=False)
        hidden: Any = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self.values_from_hidden(hidden, batch.token_ids.shape[1])
