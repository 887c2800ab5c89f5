"""Any ``grpo/*`` text env in verl: its tasks as verl's parquet files, its verifier as verl's
custom reward function.

verl reads training data from parquet files whose rows have the layout its own preprocessing
scripts write (``examples/data_preprocess/gsm8k.py`` in verl's repository)::

    {"data_source": "grpo/Math-v0",                       # the env id: picks the verifier
     "prompt": [{"role": "user", "content": "..."}],      # chat messages
     "ability": "math",
     "reward_model": {"style": "rule", "ground_truth": "..."},
     "extra_info": {"split": "train", "index": 0, "task_id": "math-train-L1-00000"}}

and scores each response with ``compute_score(data_source, solution_str, ground_truth,
extra_info)`` (``custom_reward_function.path`` / ``.name`` in verl's config), which may return
a float or a dict with a ``"score"`` key whose other keys verl collects as
``reward_extra_info`` (every response must return the same keys).

``ground_truth`` is JSON text holding everything the verdict depends on: the task's reference
and meta (written losslessly by :mod:`~grpo_envs.integrations.reference_codec`) and the env's
keyword arguments that set its verifier (``reward_mode``, ``timeout``, tolerances, ...). The
kwargs that only choose tasks (``levels``, ``dataset``, ``seed``, ...) are left out, so
:func:`compute_score` rebuilds the env (once per process) from its id without the data
files. A task scored through the parquet file gets the same verdict as from ``env.step``.

In verl's config, point the custom reward function at this file::

    custom_reward_function.path=$(python -c "import grpo_envs.integrations.verl as m; print(m.__file__)")
    custom_reward_function.name=compute_score

Example::

    >>> import tempfile, pandas
    >>> from grpo_envs.integrations.verl import compute_score, export_verl_parquet
    >>> path = export_verl_parquet("grpo/Math-v0", tempfile.mkdtemp() + "/train.parquet", limit=2, levels=1)
    >>> row = pandas.read_parquet(path).iloc[0]
    >>> row["data_source"], row["ability"], row["prompt"][0]["content"].splitlines()[0]
    ('grpo/Math-v0', 'math', 'What is 12 + 13?')
    >>> compute_score(row["data_source"], "\\\\boxed{25}", row["reward_model"]["ground_truth"], row["extra_info"])
    {'score': 1.0, 'acc': True, 'reason': 'correct', 'pred': '25'}
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import gymnasium as gym

from grpo_envs.core import TextBanditEnv
from grpo_envs.integrations.reference_codec import dumps_reference, loads_reference
from grpo_envs.integrations.text_env import make_text_env, score_completion
from grpo_envs.tasks.base import Task

#: Keyword arguments of the project's envs that choose the tasks and do not change a verdict;
#: they stay out of ``ground_truth`` so that scoring needs no data file and builds no tasks.
#: An env class may declare its own set as a ``task_source_kwargs`` class attribute.
TASK_SOURCE_KWARGS = frozenset(
    {
        "tasks",
        "dataset",
        "dataset_format",
        "dataset_config",
        "dataset_kwargs",
        "source",
        "bfcl",
        "bfcl_answers",
        "levels",
        "level",
        "categories",
        "num_tasks",
        "seed",
        "split",
        "render_mode",
    }
)

_envs: dict[tuple[str, str], TextBanditEnv] = {}
_envs_lock = threading.Lock()


def verl_rows(
    env: str | gym.Env[Any, Any],
    *,
    split_name: str | None = None,
    limit: int | None = None,
    ability: str | None = None,
    **env_kwargs: Any,
) -> list[dict[str, Any]]:
    """The env's tasks as rows in verl's layout (see the module docstring).

    :param env: a registered id (``"grpo/Math-v0"``) or an env made with ``gym.make``.
    :param split_name: the ``extra_info["split"]`` label (default: the env's own ``split``
        kwarg, such as Math-v0's held-out ``split="test"``, else ``"train"``).
    :param limit: keep only the first ``limit`` tasks (None: all of them).
    :param ability: the ``ability`` label (default: from the env class, e.g. ``"tool_call"``).
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id.
    :raises ValueError: the env has no registered id, or a verifier setting cannot be written.
    """
    text_env = make_text_env(env, env_kwargs)
    env_id, kwargs = _id_and_kwargs(env, env_kwargs)
    # An env may name its own task-choosing kwargs (ReasoningGymEnv keeps `dataset`: for it,
    # the generator's name picks the scorer).
    verifier_kwargs = _verifier_kwargs(kwargs, getattr(type(text_env), "task_source_kwargs", TASK_SOURCE_KWARGS))
    label = ability or _ability(text_env)
    split = split_name if split_name is not None else str(kwargs.get("split", "train"))
    count = text_env.num_tasks if limit is None else min(int(limit), text_env.num_tasks)
    if count < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    rows = []
    for index in range(count):
        task = text_env.tasks[index]
        ground_truth = {
            "reference": json.loads(dumps_reference(task.reference)),
            "meta": json.loads(dumps_reference(dict(task.meta))),
            "env_kwargs": verifier_kwargs,
        }
        rows.append(
            {
                "data_source": env_id,
                "prompt": [{"role": "user", "content": task.prompt}],
                "ability": label,
                "reward_model": {"style": "rule", "ground_truth": json.dumps(ground_truth, ensure_ascii=False)},
                "extra_info": {"split": split, "index": index, "task_id": task.id},
            }
        )
    return rows


def export_verl_parquet(
    env: str | gym.Env[Any, Any],
    path: str | Path,
    *,
    split_name: str | None = None,
    limit: int | None = None,
    ability: str | None = None,
    **env_kwargs: Any,
) -> Path:
    """Write the env's tasks to a parquet file that verl trains on; returns its path.

    :param env: a registered id or an env made with ``gym.make``.
    :param path: the file to write (its folder is created).
    :param split_name: the ``extra_info["split"]`` label (default: the env's own ``split``
        kwarg, else ``"train"``).
    :param limit: keep only the first ``limit`` tasks.
    :param ability: the ``ability`` label (default: from the env class).
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id.
    """
    # pyarrow writes what verl's scripts write through datasets.Dataset.to_parquet (which is
    # pyarrow underneath), without the progress bar datasets prints.
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = verl_rows(env, split_name=split_name, limit=limit, ability=ability, **env_kwargs)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), str(target))
    return target


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's custom reward function: score one response with the verifier of ``data_source``.

    :param data_source: the env id the row was exported from (``"grpo/Math-v0"``).
    :param solution_str: the decoded response.
    :param ground_truth: the row's ``reward_model["ground_truth"]`` (JSON text written by
        :func:`verl_rows`).
    :param extra_info: the row's ``extra_info`` (its ``task_id`` names the task; verl adds
        keys of its own, which are ignored).
    :param kwargs: verl's ``custom_reward_function.reward_kwargs``; none are used.
    :returns: ``{"score": reward, "acc": correct, "reason": why, "pred": what was read}``, the
        same keys for every response, as verl's ``reward_extra_info`` needs.
    :raises ValueError: ``ground_truth`` was not written by this module.
    """
    truth = _parse_ground_truth(data_source, ground_truth)
    env = _cached_env(data_source, truth["env_kwargs"])
    task_id = str((extra_info or {}).get("task_id", ""))
    task = Task(prompt="", reference=truth["reference"], id=task_id, meta=truth["meta"])
    result = score_completion(env, task, solution_str if isinstance(solution_str, str) else str(solution_str))
    parsed = result.parsed
    pred = "" if parsed is None else parsed if isinstance(parsed, str) else json.dumps(parsed, default=str)
    return {"score": float(result.reward), "acc": bool(result.correct), "reason": result.reason, "pred": pred}


def _parse_ground_truth(data_source: str, ground_truth: Any) -> dict[str, Any]:
    try:
        raw = json.loads(ground_truth) if isinstance(ground_truth, str) else None
    except json.JSONDecodeError:
        raw = None
    if not isinstance(raw, dict) or not {"reference", "meta", "env_kwargs"} <= set(raw):
        raise ValueError(
            f"the ground truth of a {data_source!r} row is not one grpo_envs wrote ({str(ground_truth)[:60]!r}); "
            "write the data with grpo_envs.integrations.verl.export_verl_parquet"
        )
    return {
        "reference": loads_reference(json.dumps(raw["reference"])),
        "meta": loads_reference(json.dumps(raw["meta"])),
        "env_kwargs": dict(raw["env_kwargs"]),
    }


def _cached_env(env_id: str, env_kwargs: dict[str, Any]) -> TextBanditEnv:
    """One env per (id, verifier kwargs) and process: building it may start worker processes."""
    key = (env_id, json.dumps(env_kwargs, sort_keys=True))
    with _envs_lock:
        if key not in _envs:
            _envs[key] = make_text_env(env_id, env_kwargs)
        return _envs[key]


def _id_and_kwargs(env: str | gym.Env[Any, Any], env_kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(env, str):
        return env, dict(env_kwargs)
    spec = env.spec if env.spec is not None else env.unwrapped.spec
    if spec is None:
        raise ValueError(
            f"this {type(env.unwrapped).__name__} was not made with gym.make, so verl cannot rebuild its verifier "
            "from an id; register it (gym.register) and pass its id"
        )
    return spec.id, dict(spec.kwargs)


def _verifier_kwargs(kwargs: dict[str, Any], task_source_kwargs: frozenset[str]) -> dict[str, Any]:
    kept = {}
    for name, value in kwargs.items():
        if name in task_source_kwargs:
            continue
        try:
            kept[name] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            raise ValueError(
                f"env kwarg {name}={value!r} cannot be written to a parquet file, and compute_score rebuilds "
                "the env from its id and JSON kwargs; leave it at its default to export for verl"
            ) from None
    return kept


def _ability(env: TextBanditEnv) -> str:
    """``ToolCallEnv`` -> ``"tool_call"``: the env class's name in snake case, without ``Env``."""
    name = type(env).__name__.removesuffix("Env") or type(env).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = ["TASK_SOURCE_KWARGS", "compute_score", "export_verl_parquet", "verl_rows"]
