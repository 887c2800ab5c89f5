"""PPO for language-model policies: a critic and per-token GAE (the RLHF baseline)."""

from grpo_agent.ppo.ppo import PPO, token_gae

__all__ = ["PPO", "token_gae"]
