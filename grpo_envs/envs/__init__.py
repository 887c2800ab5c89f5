"""One environment per file. Import an env class from its module, e.g.
``from grpo_envs.envs.bandit import ContextualBanditEnv``."""
