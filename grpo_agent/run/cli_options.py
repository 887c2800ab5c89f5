"""Command-line options generated from the algorithms' constructors.

Every hyperparameter of :class:`~grpo_agent.grpo.GRPO` and :class:`~grpo_agent.ppo.PPO` with a
plain type (a number, a flag, one of fixed choices, optionally None, or a JSON object) becomes
a ``grpo train`` option: ``clip_range_high`` is ``--clip-range-high``, with the constructor's
docstring as its help. The CLI therefore cannot fall behind the Python API, and an option the
chosen algorithm does not take is refused with the algorithm that does.

Example::

    >>> import argparse
    >>> from grpo_agent import GRPO, PPO
    >>> parser = argparse.ArgumentParser()
    >>> options = add_algorithm_options(parser, {"grpo": GRPO, "ppo": PPO})
    >>> args = parser.parse_args(["--scale-rewards", "none", "--dual-clip", "3"])
    >>> algorithm_kwargs(args, "grpo", options)
    {'scale_rewards': 'none', 'dual_clip': 3.0}
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Constructor arguments that are not hyperparameters a flag can set: the objects the CLI
#: builds itself (policy, env, optimiser, logging, device, the FSDP or DeepSpeed plan from an accelerate
#: config), the Ray cluster (Ray reads RAY_ADDRESS itself) and private switches.
NOT_OPTIONS = frozenset(
    {
        "policy",
        "env",
        "learning_rate",
        "optimizer_class",
        "optimizer_kwargs",
        "policy_kwargs",
        "tensorboard_log",
        "seed",
        "device",
        "verbose",
        "_init_setup_model",
        "trl_aliases",
        "fsdp",
        "deepspeed",
        "ray_address",
    }
)

#: What a user types for None.
NONE_WORDS = ("none", "None", "null")


@dataclass(frozen=True)
class AlgorithmOption:
    """One generated option.

    :param name: the constructor argument (``clip_range_high``).
    :param flag: the option (``--clip-range-high``).
    :param algorithms: the CLI names of the algorithms that take it.
    """

    name: str
    flag: str
    algorithms: tuple[str, ...]


def _param_docs(cls: type) -> dict[str, str]:
    """``:param name: text`` entries of the class docstring, as plain text for a terminal."""
    doc = inspect.getdoc(cls) or ""
    found = re.findall(r":param (\w+):(.*?)(?=\n\s*:param |\n\s*\n|\Z)", doc, re.S)
    return {name: _plain(" ".join(text.split())) for name, text in found}


def _plain(text: str) -> str:
    """reStructuredText roles and literals (``:mod:`~a.b```, ````x````) as plain text."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _parse_none(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text in NONE_WORDS else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its errors
    return parse


def _one_of(choices: list[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join([*choices, 'none'])})")
        return text

    return parse


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (a dict), or an error that says what was given."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"a\": 1}}', got {text!r}")
    return value


def _argparse_spec(hint: Any) -> dict[str, Any] | None:
    """``add_argument`` keywords for a type hint, or None when no flag can express it."""
    args = typing.get_args(hint)
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    named = [a for a in args if typing.get_origin(a) is Literal]
    if is_union and type(None) not in args and len(named) == 1:
        # A name or an object (e.g. a sampler): a command line can only give the name.
        return {"choices": [str(c) for c in typing.get_args(named[0])]}
    optional = is_union and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        hint = rest[0]
    if hint is bool and not optional:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is Literal:
        choices = [str(c) for c in typing.get_args(hint)]
        if not optional or "none" in choices:  # there "none" is a value; None is the default, left by omission
            return {"choices": choices}
        return {"type": _parse_none(_one_of(choices)), "metavar": "{" + ",".join([*choices, "none"]) + "}"}
    if hint in (int, float):
        return {"type": _parse_none(hint) if optional else hint, "metavar": "N" + ("|none" if optional else "")}
    if hint is dict or typing.get_origin(hint) is dict:
        return {"type": _parse_none(json_object) if optional else json_object, "metavar": "JSON"}
    return None


def add_algorithm_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, algorithms: Mapping[str, type]
) -> list[AlgorithmOption]:
    """Add an option for every plain hyperparameter of ``algorithms`` the parser does not have yet.

    The options default to absent (``argparse.SUPPRESS``): an option not given leaves the
    constructor's own default, or the CLI's, in charge.

    :param parser: the parser or argument group to add to.
    :param algorithms: CLI name -> algorithm class (``{"grpo": GRPO, "ppo": PPO}``).
    :return: the options added, for :func:`algorithm_kwargs`.
    """
    container = getattr(parser, "_container", parser)  # a group's parser knows every option string
    taken = set(getattr(container, "_option_string_actions", {}))
    owners: dict[str, list[str]] = {}
    specs: dict[str, dict[str, Any]] = {}
    helps: dict[str, str] = {}
    for algo_name, cls in algorithms.items():
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]  # the class's own constructor
        docs = _param_docs(cls)
        for name, parameter in inspect.signature(cls).parameters.items():
            if name in NOT_OPTIONS or parameter.kind is parameter.VAR_KEYWORD:
                continue
            spec = _argparse_spec(hints.get(name))
            if spec is None:
                continue
            owners.setdefault(name, []).append(algo_name)
            specs.setdefault(name, spec)
            default = "" if parameter.default is inspect.Parameter.empty else f" [{algo_name}: {parameter.default}]"
            helps[name] = helps.get(name, docs.get(name, "")) + default
    options = []
    for name, spec in specs.items():
        flag = "--" + name.replace("_", "-")
        if flag in taken:
            continue
        only = "" if len(owners[name]) == len(algorithms) else f" ({'/'.join(owners[name])} only)"
        parser.add_argument(flag, dest=name, default=argparse.SUPPRESS, help=helps[name] + only, **spec)
        options.append(AlgorithmOption(name, flag, tuple(owners[name])))
    return options


def algorithm_kwargs(args: argparse.Namespace, algorithm: str, options: list[AlgorithmOption]) -> dict[str, Any]:
    """The generated options the user gave, as keyword arguments of ``algorithm``'s constructor.

    :raises SystemExit: (status 2) when an option given belongs to another algorithm only.
    """
    given = {option.name: getattr(args, option.name) for option in options if hasattr(args, option.name)}
    for option in options:
        if option.name in given and algorithm not in option.algorithms:
            raise SystemExit(
                f"grpo train: {option.flag} applies to --algo {'/'.join(option.algorithms)}, not {algorithm}"
            )
    return given
