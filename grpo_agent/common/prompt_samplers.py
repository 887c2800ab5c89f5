"""Which prompts go into one update: uniform draws, difficulty filtering with a curriculum, or
groups of similar tasks.

A sampler draws prompts through the env's ``reset`` (so the env's seeded RNG stays the source
of randomness), reads what it needs from reset's ``info`` (``task_id``, and keys such as
``level`` or ``family`` that the ``grpo/*`` envs put there), and after each rollout sees every
group's rewards (:meth:`PromptSampler.update`). Every sampler returns exactly ``n`` prompts: a
filter that cannot find enough acceptable ones within its draw budget fills the rest with
what it drew, and says so in :attr:`PromptSampler.last_stats`.

- :class:`UniformPromptSampler`: what the env's reset draws (GRPO's default).
- :class:`DifficultyPromptSampler`: skips (or keeps with a small probability) tasks whose recent
  groups were all solved or all failed, the groups with no learning signal; optionally an
  easy-to-hard curriculum over a difficulty key. This is the "online difficulty filtering" of
  recent reasoning-RL work (e.g. Bae et al. 2025, arXiv:2504.03380; Yu et al. 2025, DAPO's
  dynamic sampling, which filters after sampling instead of before).
- :class:`SimilarityPromptSampler`: the prompts of one update share a key (a level, a family, or
  any function of reset's ``info``), so that ``scale_rewards="batch"`` compares like with like.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

import numpy as np

from grpo_agent.common.rollout import draw_tasks, task_id_of

#: ``reset() -> (observation, info)``: the agent's reset (seeded on first use).
Reset = Callable[[], tuple[Any, dict[str, Any]]]
#: The samplers that have a name.
PromptSamplerName = Literal["uniform", "difficulty", "similarity"]
#: A task's key, read from reset's ``info``: the name of an ``info`` entry or a function of ``info``.
KeyFn = str | Callable[[dict[str, Any]], Hashable]


def _key_reader(key: KeyFn) -> Callable[[dict[str, Any]], Hashable]:
    if callable(key):
        return key

    def read(info: dict[str, Any]) -> Hashable:
        if key not in info:
            raise ValueError(f"the env's reset info has no {key!r} entry (it has {sorted(info)}); pass key=...")
        return info[key]

    return read


class PromptSampler:
    """Draws the prompts of one update; sees the rewards of each rollout afterwards."""

    def __init__(self) -> None:
        #: What the last :meth:`draw` did (draws, accepted, filled), for logging.
        self.last_stats: dict[str, float] = {}

    def draw(self, reset: Reset, n: int, algorithm: str) -> tuple[list[Any], list[Any]]:
        """``n`` prompts and the task ids that pin them again."""
        raise NotImplementedError

    def update(self, task_ids: Sequence[Any], rewards: np.ndarray) -> None:
        """Learn from a rollout: ``rewards`` is ``(n_groups, G)``, one row per ``task_ids`` entry."""


class UniformPromptSampler(PromptSampler):
    """Whatever the env's reset draws (uniform over its tasks for the ``grpo/*`` envs)."""

    def draw(self, reset: Reset, n: int, algorithm: str) -> tuple[list[Any], list[Any]]:
        self.last_stats = {"draws": n, "accepted": n, "filled": 0}
        return draw_tasks(reset, n, algorithm)


class _FilteringSampler(PromptSampler):
    """Draws until ``n`` prompts pass :meth:`_accept` or ``max_draws_per_prompt * n`` draws are
    spent; then fills with the earliest rejected ones."""

    def __init__(self, max_draws_per_prompt: int = 8) -> None:
        super().__init__()
        if max_draws_per_prompt < 1:
            raise ValueError(f"max_draws_per_prompt must be >= 1, got {max_draws_per_prompt}")
        self.max_draws_per_prompt = max_draws_per_prompt

    def _accept(self, task_id: Any, info: dict[str, Any], chosen: list[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def draw(self, reset: Reset, n: int, algorithm: str) -> tuple[list[Any], list[Any]]:
        chosen: list[tuple[Any, Any, dict[str, Any]]] = []
        rejected: list[tuple[Any, Any, dict[str, Any]]] = []
        draws = 0
        while len(chosen) < n and draws < self.max_draws_per_prompt * n:
            observation, info = reset()
            draws += 1
            task_id = task_id_of(info, algorithm)
            entry = (observation, task_id, info)
            (chosen if self._accept(task_id, info, [c[2] for c in chosen]) else rejected).append(entry)
        filled = max(0, n - len(chosen))
        chosen.extend(rejected[:filled])
        self.last_stats = {"draws": draws, "accepted": n - filled, "filled": filled}
        return [c[0] for c in chosen], [c[1] for c in chosen]


class DifficultyPromptSampler(_FilteringSampler):
    """Skip tasks that recently gave no learning signal; optionally, easy tasks first.

    :param window: groups remembered per task; its pass rate is their mean reward.
    :param solved: a task whose remembered groups all had every completion at or above this
        reward is "always solved" (1.0 for 0/1 rewards).
    :param unsolved: likewise "never solved" at or below this reward.
    :param keep_probability: chance to keep a filtered task anyway (0: skip it; between 0 and 1:
        down-weight it), so its estimate can change as the policy does.
    :param curriculum: draw only tasks whose ``difficulty_key`` is at most the current level,
        starting at the lowest level seen (until the first promotion), and raise the level once
        the current level's recent pass rate (its last 32 groups, at least 8) reaches ``promote_at``.
    :param difficulty_key: the ordered difficulty of a task: an ``info`` entry or a function of ``info``.
    :param promote_at: the pass rate that opens the next level of the curriculum.
    :param max_draws_per_prompt: draw budget (see the class docstring of the module).
    :param seed: the keep-probability's RNG.
    """

    def __init__(
        self,
        window: int = 2,
        solved: float = 1.0,
        unsolved: float = 0.0,
        keep_probability: float = 0.0,
        curriculum: bool = False,
        difficulty_key: KeyFn = "level",
        promote_at: float = 0.6,
        max_draws_per_prompt: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__(max_draws_per_prompt)
        if window < 1 or not 0 <= keep_probability <= 1:
            raise ValueError(f"need window >= 1 and keep_probability in [0, 1], got {window}, {keep_probability}")
        self.window, self.solved, self.unsolved = window, solved, unsolved
        self.keep_probability, self.curriculum, self.promote_at = keep_probability, curriculum, promote_at
        self.difficulty = _key_reader(difficulty_key)
        self.rng = np.random.default_rng(seed)
        #: task id -> recent groups' (min, max, mean) rewards.
        self.history: dict[Any, deque[tuple[float, float, float]]] = defaultdict(lambda: deque(maxlen=window))
        #: curriculum level -> recent group means of its tasks.
        self.level_history: dict[Hashable, deque[float]] = defaultdict(lambda: deque(maxlen=32))
        self.level: Any = None
        self._promoted = False
        self._levels: dict[Any, Any] = {}  # task id -> level, as seen at draw time

    def _no_signal(self, task_id: Any) -> bool:
        seen = self.history.get(task_id)
        if not seen:
            return False
        return all(lo >= self.solved for lo, _, _ in seen) or all(hi <= self.unsolved for _, hi, _ in seen)

    def _accept(self, task_id: Any, info: dict[str, Any], chosen: list[dict[str, Any]]) -> bool:
        if self.curriculum:
            level = self.difficulty(info)
            self._levels[task_id] = level
            if not self._promoted:  # until the first promotion the start is the lowest level seen
                self.level = level if self.level is None else min(self.level, level)
            if level > self.level:
                return False
        if self._no_signal(task_id):
            return bool(self.rng.random() < self.keep_probability)
        return True

    def update(self, task_ids: Sequence[Any], rewards: np.ndarray) -> None:
        for task_id, row in zip(task_ids, np.asarray(rewards, dtype=np.float64)):
            self.history[task_id].append((float(row.min()), float(row.max()), float(row.mean())))
            if self.curriculum and task_id in self._levels:
                self.level_history[self._levels[task_id]].append(float(row.mean()))
        if self.curriculum and self.level is not None:
            recent = self.level_history[self.level]
            harder = sorted({v for v in self._levels.values() if v > self.level})
            if len(recent) >= 8 and float(np.mean(recent)) >= self.promote_at and harder:
                self.level, self._promoted = harder[0], True


class SimilarityPromptSampler(_FilteringSampler):
    """The prompts of one update share a key: the first prompt drawn sets it.

    :param key: an ``info`` entry (``"level"``, ``"family"``) or a function of ``info`` (e.g. an
        embedding cluster the user computed per task id).
    :param max_draws_per_prompt: draw budget (see the module docstring).
    """

    def __init__(self, key: KeyFn = "level", max_draws_per_prompt: int = 8) -> None:
        super().__init__(max_draws_per_prompt)
        self.key = _key_reader(key)

    def _accept(self, task_id: Any, info: dict[str, Any], chosen: list[dict[str, Any]]) -> bool:
        return not chosen or self.key(info) == self.key(chosen[0])


def make_prompt_sampler(sampler: PromptSamplerName | str | PromptSampler) -> PromptSampler:
    """A sampler from its name (``"uniform"``, ``"difficulty"``, ``"similarity"``) or as given."""
    if isinstance(sampler, PromptSampler):
        return sampler
    known: dict[str, Callable[[], PromptSampler]] = {
        "uniform": UniformPromptSampler,
        "difficulty": DifficultyPromptSampler,
        "similarity": SimilarityPromptSampler,
    }
    if sampler not in known:
        raise ValueError(
            f"prompt_sampler={sampler!r} is not supported; choose one of {sorted(known)} or pass a PromptSampler"
        )
    return known[sampler]()
