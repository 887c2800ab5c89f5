"""grpo_envs: verifiable-reward Gymnasium environments for language-model RL.

Importing this package registers the ``grpo/*`` ids; ``gym.make("grpo_envs:grpo/Math-v0")``
does the import for you. Nothing here imports torch.
"""

from gymnasium.envs.registration import register

from grpo_envs.core import RewardFnEnv, TextBanditEnv
from grpo_envs.tasks.base import Task
from grpo_envs.verify.result import VerifyResult
from grpo_envs.version import __version__

__all__ = ["RewardFnEnv", "Task", "TextBanditEnv", "VerifyResult", "__version__"]

# No max_episode_steps: one-step envs terminate by themselves, and a TimeLimit would also mark
# that single step as truncated, which tells value-based learners not to bootstrap wrongly.
register(id="grpo/Bandit-v0", entry_point="grpo_envs.envs.bandit:ContextualBanditEnv")
register(id="grpo/Math-v0", entry_point="grpo_envs.envs.math:MathEnv")
register(id="grpo/ToolCall-v0", entry_point="grpo_envs.envs.tool_call:ToolCallEnv")
# ToolUse-v0 is multi-turn but truncates itself at max_turns (a kwarg), so no TimeLimit either.
register(id="grpo/ToolUse-v0", entry_point="grpo_envs.envs.tool_use:ToolUseEnv")
register(id="grpo/Code-v0", entry_point="grpo_envs.envs.code:CodeEnv")
# Needs the optional reasoning-gym package, imported only when the env is made.
register(id="grpo/ReasoningGym-v0", entry_point="grpo_envs.envs.reasoning_gym:ReasoningGymEnv")
