"""grpo_agent: a GRPO agent with a stable-baselines3-style API, and the policies it trains.

Example::

    import gymnasium as gym
    import grpo_envs
    from grpo_agent import GRPO

    env = gym.make("grpo/Bandit-v0")
    model = GRPO("tabular", env, learning_rate=0.05, seed=0).learn(total_timesteps=4096)
"""

from grpo_agent.policies import BasePolicy, CompletionBatch, TabularPolicy, TokenLogProbs  # noqa: I001
from grpo_agent.grpo import GRPO
from grpo_agent.common.buffers import GroupRolloutBuffer, GroupRolloutSamples, RunningTaskBaseline
from grpo_agent.common.callbacks import EvalCallback, ProgressBarCallback
from grpo_agent.common.evaluation import evaluate_policy, exact_expected_reward
from grpo_agent.common.logger import configure
from grpo_agent.common.schedules import ConstantSchedule, CosineSchedule, LinearSchedule

__version__ = "0.1.0"

__all__ = [
    "GRPO",
    "BasePolicy",
    "CompletionBatch",
    "ConstantSchedule",
    "CosineSchedule",
    "EvalCallback",
    "GroupRolloutBuffer",
    "GroupRolloutSamples",
    "LinearSchedule",
    "ProgressBarCallback",
    "RunningTaskBaseline",
    "TabularPolicy",
    "TokenLogProbs",
    "__version__",
    "configure",
    "evaluate_policy",
    "exact_expected_reward",
]
