"""grpo/ReasoningGym-v0: reasoning-gym's procedural generators, scored by reasoning-gym's own scorers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grpo_envs.core import DEFAULT_MAX_COMPLETION_LENGTH, DEFAULT_MAX_PROMPT_LENGTH, TextBanditEnv
from grpo_envs.tasks.base import Task, task_index
from grpo_envs.verify.result import CORRECT, PARSE_FAILED, WRONG, VerifyResult

#: The prompt; ``{question}`` is replaced by the generator's question. reasoning-gym's own
#: system prompts ask for the final answer inside ``<answer>`` tags, and its scorers expect
#: exactly what is inside them.
DEFAULT_PROMPT_TEMPLATE = "{question}\nGive only your final answer inside <answer></answer> tags."

#: Reason of a reward strictly between 0 and 1 (several reasoning-gym scorers give partial credit).
PARTIAL = "partial"

#: Added to the seed of the test split's generator. reasoning-gym seeds item ``k`` with
#: ``Random(seed + k)`` (a composite's i-th generator with ``seed + i + 1``), so the test split's
#: items use random streams that no training item uses while ``num_tasks <= TEST_SEED_OFFSET``.
#: (An offset of the item index would not do: some generators precompute ``size`` items.)
TEST_SEED_OFFSET = 1_000_000_000

SPLITS = ("train", "test")


def _import_reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise ImportError(
            "grpo/ReasoningGym-v0 needs the reasoning-gym package: pip install 'grpo-gym[reasoning-gym]' "
            "(or pip install reasoning-gym)"
        ) from None
    return reasoning_gym


class ReasoningGymTasks:
    """``num_tasks`` items of a reasoning-gym dataset as :class:`~grpo_envs.tasks.Task` objects.

    :param dataset: a reasoning-gym ``ProceduralDataset`` (composites included).
    :param name: the name used in task ids.
    :param num_tasks: how many tasks (the dataset's first ``num_tasks`` items).
    :param split: ``"train"`` or ``"test"``, for task ids.
    :param prompt_template: text with a ``{question}`` placeholder.
    """

    def __init__(self, dataset: Any, name: str, num_tasks: int, split: str, prompt_template: str) -> None:
        self.dataset, self.name, self.num_tasks = dataset, name, num_tasks
        self.split, self.prompt_template = split, prompt_template
        self._cache: dict[int, Task] = {}  # a GRPO group asks for the same task G times

    def __len__(self) -> int:
        return self.num_tasks

    def __getitem__(self, index: int) -> Task:
        index = task_index(index, self.num_tasks)
        task = self._cache.get(index)
        if task is None:
            entry = self.dataset[index]
            task = Task(
                prompt=self.prompt_template.replace("{question}", str(entry["question"])),
                reference=entry,
                id=f"rg-{self.name}-{self.split}-{index:05d}",
                meta={"source_dataset": entry.get("metadata", {}).get("source_dataset", self.name)},
            )
            self._cache[index] = task
        return task


class ReasoningGymEnv(TextBanditEnv):
    """
    ## Description

    A one-step text bandit over any of reasoning-gym's procedural generators (arithmetic,
    algebra, logic puzzles, graphs, games, ciphers, ...; ``reasoning_gym.factory.DATASETS``
    lists them), or a weighted composite of several. Each task is one generated item; the
    completion's answer, read from its last ``<answer>...</answer>`` tags, is scored by the
    generator's own ``score_answer``. Needs ``pip install reasoning-gym`` (the
    ``reasoning-gym`` extra); nothing is downloaded.

    ## Action Space

    :class:`~grpo_envs.spaces.UnicodeText`: the completion (any string up to
    ``max_completion_length`` characters).

    ## Observation Space

    :class:`~grpo_envs.spaces.UnicodeText`: the question with an instruction to answer inside
    ``<answer></answer>`` tags (``prompt_template``).

    ## Rewards

    The generator's score of the tagged answer, in ``[0, 1]``. ``info["reason"]`` is
    ``correct`` (1.0), ``partial`` (some generators give partial credit), ``wrong`` (0) or
    ``parse_failed`` (no ``<answer>`` tags: reward 0); ``info["parsed"]`` is the tagged
    answer, ``info["reference"]`` the generator's answer.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    - ``dataset`` (str or mapping, default ``"basic_arithmetic"``): a generator name, or a
      mapping ``{name: weight}`` for a composite that draws each task from one generator with
      probability proportional to its weight.
    - ``config`` (dict, optional): the generator's settings (e.g. ``{"min_terms": 2}``); for a
      composite, a mapping ``{name: settings}``.
    - ``num_tasks`` (int, default 1000): tasks per split.
    - ``split`` (``"train"`` or ``"test"``, default ``"train"``): the test split uses items whose
      random streams no training item uses (generators with very few distinct questions may
      still repeat a question text).
    - ``seed`` (int, default 0): seed of task generation (episodes are seeded by ``reset``).
    - ``prompt_template`` (str): must contain ``{question}``.
    - ``render_mode`` (None or ``"ansi"``), ``max_prompt_length``, ``max_completion_length``.

    ## Version History

    - v0: initial version (reasoning-gym 0.1.25).

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> env = gym.make("grpo/ReasoningGym-v0", dataset={"basic_arithmetic": 2, "leg_counting": 1}, seed=0)
        >>> prompt, info = env.reset(seed=0, options={"task_id": 0})
        >>> answer = env.unwrapped.task.reference["answer"]
        >>> _, reward, terminated, _, info = env.step(f"<answer>{answer}</answer>")
        >>> reward, info["reason"], terminated
        (1.0, 'correct', True)
    """

    #: The kwargs that only choose tasks: verl's export leaves them out of ``ground_truth``
    #: (the generators' names and settings stay in: they pick the scorer).
    task_source_kwargs = frozenset({"num_tasks", "seed", "split", "render_mode"})

    def __init__(
        self,
        dataset: str | Mapping[str, float] = "basic_arithmetic",
        config: Mapping[str, Any] | None = None,
        num_tasks: int = 1000,
        split: str = "train",
        seed: int = 0,
        *,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        render_mode: str | None = None,
        max_prompt_length: int = DEFAULT_MAX_PROMPT_LENGTH,
        max_completion_length: int = DEFAULT_MAX_COMPLETION_LENGTH,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not 1 <= num_tasks <= TEST_SEED_OFFSET:
            raise ValueError(f"num_tasks must be between 1 and {TEST_SEED_OFFSET}, got {num_tasks}")
        if "{question}" not in prompt_template:
            raise ValueError(f"prompt_template must contain '{{question}}', got {prompt_template!r}")
        rg = _import_reasoning_gym()
        self._extract_answer = rg.utils.extract_answer
        generator_seed = seed + (TEST_SEED_OFFSET if split == "test" else 0)
        self.generator = _create_dataset(rg, dataset, dict(config or {}), size=num_tasks, seed=generator_seed)
        name = dataset if isinstance(dataset, str) else "composite"
        super().__init__(
            ReasoningGymTasks(self.generator, name, num_tasks, split, prompt_template),
            render_mode=render_mode,
            max_prompt_length=max_prompt_length,
            max_completion_length=max_completion_length,
        )

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Score the answer inside the completion's last ``<answer>`` tags with the generator's scorer."""
        answer = self._extract_answer(completion)
        if answer is None:
            return VerifyResult.fail(PARSE_FAILED, message="no <answer>...</answer> tags in the completion")
        score = float(self.generator.score_answer(answer, task.reference))
        score = min(max(score, 0.0), 1.0)
        reason = CORRECT if score >= 1.0 else PARTIAL if score > 0.0 else WRONG
        return VerifyResult(reward=score, correct=score >= 1.0, reason=reason, parsed=answer)

    def describe_reference(self, task: Task) -> Any:
        """The generator's answer (its metadata stays in ``task.reference``)."""
        return task.reference["answer"]


def _create_dataset(rg: Any, dataset: str | Mapping[str, float], config: dict[str, Any], size: int, seed: int) -> Any:
    """A reasoning-gym dataset: one generator, or a weighted composite; bad names or settings
    raise a ValueError that says which."""
    known = rg.factory.DATASETS
    if isinstance(dataset, str):
        specs = {dataset: 1.0}
        configs = {dataset: config}
    elif isinstance(dataset, Mapping) and dataset:
        specs = {str(k): float(v) for k, v in dataset.items()}
        unknown_configs = sorted(set(config) - set(specs))
        if unknown_configs:
            raise ValueError(
                f"config for a composite maps generator names to settings; {unknown_configs} are not in dataset"
            )
        configs = {name: dict(config.get(name) or {}) for name in specs}
        if any(w <= 0 for w in specs.values()):
            raise ValueError(f"composite weights must be positive, got {specs}")
    else:
        raise TypeError(f"dataset must be a generator name or a non-empty mapping {{name: weight}}, got {dataset!r}")
    unknown = sorted(set(specs) - set(known))
    if unknown:
        raise ValueError(
            f"unknown reasoning-gym dataset(s) {unknown}; reasoning_gym.factory.DATASETS lists the "
            f"{len(known)} names (e.g. {', '.join(sorted(known)[:5])})"
        )
    try:
        if isinstance(dataset, str):
            return rg.create_dataset(dataset, **config, size=size, seed=seed)
        from reasoning_gym.composite import DatasetSpec

        parts = [DatasetSpec(name=n, weight=w, config=configs[n]) for n, w in specs.items()]
        return rg.create_dataset("composite", datasets=parts, size=size, seed=seed)
    except (TypeError, AssertionError, ValueError) as exc:
        raise ValueError(f"reasoning-gym refused the settings of {dataset!r}: {exc}") from exc


__all__ = ["PARTIAL", "TEST_SEED_OFFSET", "ReasoningGymEnv", "ReasoningGymTasks"]
