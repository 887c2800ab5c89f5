"""``grpo train --config run.yaml``: a YAML file of ``grpo train`` options.

The keys are the options' names with underscores (``group_size: 8``, ``clip_range_high: 0.28``),
which for every hyperparameter is also the constructor argument's name in Python
(:class:`~grpo_agent.grpo.GRPO`, :class:`~grpo_agent.ppo.PPO`; the policy's go under
``policy_kwargs``). The file becomes command-line tokens placed before the user's own, so each
value goes through the same checks as its flag, and a flag given beside the file overrides it
(argparse keeps an option's last value).

Example::

    >>> import argparse
    >>> parser = argparse.ArgumentParser(exit_on_error=False)
    >>> _ = parser.add_argument("--group-size", type=int, default=8)
    >>> _ = parser.add_argument("--env-kwargs", default=None)
    >>> _ = parser.add_argument("--no-progress", action="store_true")
    >>> options_as_tokens({"group_size": 4, "env_kwargs": {"levels": 1}, "no_progress": True}, parser, "run.yaml")
    ['--group-size', '4', '--env-kwargs', '{"levels": 1}', '--no-progress']
    >>> options_as_tokens({"group_size": "four"}, parser, "run.yaml")
    Traceback (most recent call last):
    ...
    grpo_agent.run.config_file.ConfigError: run.yaml: group_size: invalid int value: 'four'
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

#: Options a file cannot set, and why.
NOT_IN_A_FILE = {
    "config": "a run file cannot name another; give one --config",
    "resume": "a resumed run keeps its own settings; give --resume RUN_DIR on the command line",
    # The processes --num-processes starts rerun the same command line, --config included: a
    # count inside the file would make each of them start processes again.
    "num_processes": "give --num-processes on the command line (the processes it starts read this file)",
}


class ConfigError(ValueError):
    """A ``--config`` file that cannot be used; the message is one sentence naming the key."""


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML file.

    :raises ConfigError: when the file is missing, is not YAML, or is not a mapping.
    """
    import yaml

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path} is not YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must be a mapping of option: value, got a {type(data).__name__}")
    return data


def _tokens(action: argparse.Action, value: Any, where: str) -> list[str]:
    flag = action.option_strings[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
        return [flag] if value else [action.option_strings[1]]
    if action.nargs == 0:  # store_true
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
        return [flag] if value else []
    if value is None:
        return [flag, "none"] if action.default is argparse.SUPPRESS else []  # None: the default
    if isinstance(value, (dict, list)):
        return [flag, json.dumps(value)]
    if isinstance(value, bool):
        raise ConfigError(f"{where}: takes a value, not {str(value).lower()}")
    return [flag, str(value)]


def options_as_tokens(options: dict[str, Any], parser: argparse.ArgumentParser, path: str) -> list[str]:
    """Command-line tokens for ``options`` (a ``--config`` file's mapping), each checked by
    ``parser`` (built with ``exit_on_error=False``), in the file's order.

    :raises ConfigError: naming the first unknown key or bad value.
    """
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    tokens: list[str] = []
    for key, value in options.items():
        name = str(key).replace("-", "_")
        where = f"{path}: {key}"
        if name in NOT_IN_A_FILE:
            raise ConfigError(f"{where}: {NOT_IN_A_FILE[name]}")
        action = actions.get(name)
        if action is None:
            raise ConfigError(f"{where} is not a grpo train option (grpo train --help lists them)")
        mine = _tokens(action, value, where)
        try:
            parser.parse_known_args(mine)
        except argparse.ArgumentError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        tokens += mine
    return tokens
