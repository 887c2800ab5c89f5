"""The built-in ``"tiny"`` policy: a small transformer and a character tokenizer, built in code
and warm-started on the env's own tasks, behind a :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`.

Nothing downloads anything. The parts have modules of their own, whose names this module
re-exports (where earlier versions defined them): the tokenizer
(:mod:`~grpo_agent.policies.char_tokenizer`), the network (:mod:`~grpo_agent.policies.tiny_model`),
supervised fine-tuning (:mod:`~grpo_agent.policies.sft`) and the cached warm start
(:mod:`~grpo_agent.policies.warm_start`).

Example::

    >>> import gymnasium as gym, grpo_envs
    >>> from grpo_agent.policies.tiny import TinyPolicy
    >>> env = gym.make("grpo/Math-v0", levels=1)
    >>> policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, max_new_tokens=4)
    >>> len(policy.sample(["What is 1 + 1?"], n=2).actions)
    2
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.policies.char_tokenizer import (
    BOS_TOKEN,
    DEFAULT_CHARSET,
    EOS_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TINY_CHAT_TEMPLATE,
    UNK_TOKEN,
    build_char_tokenizer,
)
from grpo_agent.policies.sft import (
    SFTConfig,
    greedy_accuracy,
    reference_completion,
    render_chat_prompt,
    sft,
    sft_examples_from_env,
    split_off_check_tasks,
)
from grpo_agent.policies.tiny_model import TinyConfig, build_tiny_model
from grpo_agent.policies.warm_start import default_cache_dir, warm_start_key, warm_start_tiny

__all__ = [
    "BOS_TOKEN",
    "DEFAULT_CHARSET",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "TINY_CHAT_TEMPLATE",
    "UNK_TOKEN",
    "SFTConfig",
    "TinyConfig",
    "TinyPolicy",
    "build_char_tokenizer",
    "build_tiny_model",
    "default_cache_dir",
    "greedy_accuracy",
    "reference_completion",
    "render_chat_prompt",
    "sft",
    "sft_examples_from_env",
    "split_off_check_tasks",
    "warm_start_key",
    "warm_start_tiny",
]


class TinyPolicy(CausalLMPolicy):
    """The built-in ``"tiny"`` policy: :func:`build_tiny_model` behind a
    :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`, warm-started on ``env``.

    ``GRPO("tiny", env)`` builds it with the env; built without one (as when a saved agent is
    loaded, whose weights then replace the random ones) it is the untrained network.

    :param observation_space: the env's observation space.
    :param action_space: the env's action space.
    :param env: the env (its training tasks) to warm-start on; None for no warm start.
    :param sft_steps: warm-start budget in optimizer steps (default :class:`SFTConfig`'s);
        0 skips the warm start. With ``sft_config``: overrides its ``steps``.
    :param sft_config: the whole warm-start configuration, as an :class:`SFTConfig` or a dict
        of its fields (e.g. ``{"target_accuracy": 0.3, "steps": 2000}``); its ``seed`` is
        replaced by ``seed``.
    :param seed: seed of the initialisation and of the SFT batch order.
    :param tiny_config: the network's shape, as a :class:`TinyConfig` or a dict of its fields.
    :param charset: the tokenizer's characters.
    :param cache_dir: warm-start cache root (default ``$GRPO_GYM_CACHE`` or ``~/.cache/grpo-gym``).
    :param verbose: 1 reports the warm start.
    :param kwargs: :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`'s keyword arguments;
        ``max_new_tokens`` defaults to 16, ``max_prompt_length`` to the positions the network
        was built for less ``max_new_tokens`` (the tool and code envs' prompts run to ~1,700
        characters, i.e. tokens), and ``device`` to ``"cpu"`` (a 0.9M-parameter model is
        faster on the CPU than the launch overhead of a GPU).
    """

    #: The algorithms pass their env to policies that ask for it: the warm start reads its tasks.
    needs_env = True

    def __init__(
        self,
        observation_space: Any = None,
        action_space: Any = None,
        env: Any = None,
        *,
        sft_steps: int | None = None,
        sft_config: SFTConfig | dict[str, Any] | None = None,
        seed: int = 0,
        tiny_config: TinyConfig | dict[str, Any] | None = None,
        charset: str = DEFAULT_CHARSET,
        cache_dir: str | os.PathLike[str] | None = None,
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        if isinstance(tiny_config, dict):
            tiny_config = TinyConfig(**tiny_config)
        tiny_config = tiny_config or TinyConfig()
        kwargs.setdefault("max_new_tokens", 16)
        kwargs.setdefault("max_prompt_length", max(1, tiny_config.max_position_embeddings - kwargs["max_new_tokens"]))
        kwargs.setdefault("device", "cpu")
        kwargs.pop("model", None)  # the tiny network is rebuilt from tiny_config, never loaded by name
        fields = asdict(sft_config) if isinstance(sft_config, SFTConfig) else dict(sft_config or {})
        fields["seed"] = seed
        if sft_steps is not None:
            fields["steps"] = int(sft_steps)
        sft_config = SFTConfig(**fields)
        if env is not None and sft_config.steps > 0:
            path = warm_start_tiny(
                env,
                tiny=tiny_config,
                sft_config=sft_config,
                charset=charset,
                cache_dir=cache_dir,
                verbose=verbose,
                max_new_tokens=kwargs["max_new_tokens"],
            )
            super().__init__(observation_space, action_space, path, **kwargs)
        else:
            tokenizer = build_char_tokenizer(charset)
            super().__init__(
                observation_space, action_space, build_tiny_model(tokenizer, tiny_config, seed), tokenizer, **kwargs
            )
        self.tiny_config, self.charset, self.sft_steps, self.tiny_seed = tiny_config, charset, sft_config.steps, seed
        self.name_or_path = "tiny"

    def get_constructor_parameters(self) -> dict[str, Any]:
        """Rebuild the same network (untrained; the saved ``state_dict`` restores the weights)."""
        params = super().get_constructor_parameters()
        params.pop("model", None)
        # sft_steps=0: a loaded agent gets its weights from the checkpoint, not from a new warm start.
        return {
            **params,
            "tiny_config": asdict(self.tiny_config),
            "charset": self.charset,
            "seed": self.tiny_seed,
            "sft_steps": 0,
        }
