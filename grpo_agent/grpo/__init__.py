"""The GRPO algorithm (:class:`GRPO`) and its loss (:mod:`grpo_agent.grpo.loss`)."""

from grpo_agent.grpo import loss
from grpo_agent.grpo.grpo import GRPO
from grpo_agent.grpo.kl_controller import AdaptiveKLController, FixedKLController

__all__ = ["GRPO", "AdaptiveKLController", "FixedKLController", "loss"]
