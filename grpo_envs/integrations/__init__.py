"""Our environments inside other trainers: TRL (:mod:`grpo_envs.integrations.trl`) and verl
(:mod:`grpo_envs.integrations.verl`).

Each integration imports its own dependencies (``datasets``, ``pandas``) when it is used, so
``import grpo_envs`` stays light; none of them imports torch.
"""
