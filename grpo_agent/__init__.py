"""grpo_agent: a GRPO agent with a stable-baselines3-style API, and the policies it trains.

Example::

    import gymnasium as gym
    import grpo_envs
    from grpo_agent import GRPO

    env = gym.make("grpo/Bandit-v0")
    model = GRPO("tabular", env, learning_rate=0.05, seed=0).learn(total_timesteps=4096)
"""

from grpo_agent.common.buffers import GroupRolloutBuffer, GroupRolloutSamples, RunningTaskBaseline
from grpo_agent.common.callbacks import EvalCallback, ProgressBarCallback
from grpo_agent.common.deepspeed_support import select_accelerator
from grpo_agent.common.evaluation import evaluate_policy, exact_expected_reward
from grpo_agent.common.logger import configure
from grpo_agent.common.schedules import ConstantSchedule, CosineSchedule, LinearSchedule
from grpo_agent.grpo import GRPO
from grpo_agent.policies import BasePolicy, CompletionBatch, TabularPolicy, TokenLogProbs
from grpo_agent.ppo import PPO
from grpo_envs.version import __version__

# DeepSpeed, where installed, is imported by accelerate inside transformers' save_pretrained, even
# in a single-process run; on a machine without CUDA it then logs a WARNING that it fell back to
# the CPU. Naming the CPU first (only when CUDA is absent, and only if DS_ACCELERATOR is unset)
# keeps that out of every run's output.
select_accelerator()

__all__ = [
    "GRPO",
    "PPO",
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
