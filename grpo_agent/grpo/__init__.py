"""The GRPO algorithm (:class:`GRPO`) and its loss functions (:mod:`grpo_agent.grpo.loss`)."""

# loss first: common.buffers imports it, and grpo.grpo imports common.buffers.
from grpo_agent.grpo import loss
from grpo_agent.grpo.grpo import GRPO
from grpo_agent.grpo.kl_controller import AdaptiveKLController, FixedKLController

__all__ = ["GRPO", "AdaptiveKLController", "FixedKLController", "loss"]
