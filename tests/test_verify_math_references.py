"""Bad references fail loud (or are skipped and counted); structured answers stay bounded."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

from grpo_envs.envs.math import MathEnv
from grpo_envs.tasks.base import Task
from grpo_envs.tasks.math import LEVELS, ProceduralMathTasks, load_gsm8k, load_math
from grpo_envs.tasks.math_references import validate_references
from grpo_envs.verify import BadReferenceError, check_reference, check_references, verify_math_answer
from grpo_envs.verify.math import check_math_answer

FIXTURES = Path(__file__).parent / "fixtures"
TABLE = Path(__file__).parent / "data" / "math_verdicts.jsonl"

BAD = {
    r"\frac{1}{": "ends too early",
    "x^2+": "ends too early",
    "": "empty",
    "   ": "empty",
    "@@@": "neither parser",
    "9^{9^{9^{9}}}": "too large",
    r"\frac{1}{0}": "undefined",
}


@pytest.mark.parametrize("reference", sorted(BAD))
def test_a_bad_reference_says_what_is_wrong(reference: str) -> None:
    problem = check_reference(reference)
    assert problem is not None and BAD[reference] in problem, problem


def test_every_reference_of_the_table_is_readable() -> None:
    rows = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    references = sorted({row["reference"] for row in rows})
    problems = dict(zip(references, check_references(references), strict=True))
    assert {r: p for r, p in problems.items() if p is not None} == {}


def test_no_built_in_reference_is_unparseable() -> None:
    """Every generated reference (all levels, both splits) and every loader fixture parses."""
    references = []
    for split in ("train", "test"):
        tasks = ProceduralMathTasks(levels=LEVELS, num_tasks=300, split=split, seed=0)
        references += [str(tasks[k].reference) for k in range(len(tasks))]
    references += [t.reference for t in load_gsm8k(str(FIXTURES / "gsm8k_sample.jsonl"))]
    references += [t.reference for t in load_math(str(FIXTURES / "math_sample.jsonl"))]
    problems = {r: p for r, p in zip(references, check_references(references), strict=True) if p is not None}
    assert problems == {}


def _tasks() -> list[Task]:
    references = ["2", r"\frac{1}{", r"(\frac{3}{5}, \frac{8}{3}]", "@@", r"\text{odd}"]
    return [Task(prompt=f"question {k}", reference=r, id=f"t{k}") for k, r in enumerate(references)]


def test_validate_references_raises_naming_the_task_and_the_problem() -> None:
    with pytest.raises(BadReferenceError, match=r"task 't1' has the reference .*ends too early.*2 of 5 tasks"):
        validate_references(_tasks())


def test_skip_drops_bad_tasks_and_reports_how_many() -> None:
    with pytest.warns(UserWarning, match="dropped 2 of 5 math tasks"):
        kept, dropped = validate_references(_tasks(), on_bad_reference="skip")
    assert [t.id for t in kept] == ["t0", "t2", "t4"]
    assert [task_id for task_id, _ in dropped] == ["t1", "t3"]
    with pytest.raises(ValueError, match="on_bad_reference must be one of"):
        validate_references(_tasks(), on_bad_reference="ignore")


def test_the_env_checks_task_lists_and_datasets_when_they_are_read(tmp_path: Path) -> None:
    with pytest.raises(BadReferenceError, match="task 't1'"):
        MathEnv(tasks=_tasks())
    with pytest.warns(UserWarning, match="dropped 2 of 5"):
        env = MathEnv(tasks=_tasks(), on_bad_reference="skip")
    assert env.num_tasks == 3 and [task_id for task_id, _ in env.skipped_tasks] == ["t1", "t3"]
    prompt, _ = env.reset(seed=0)
    assert prompt.startswith("question ")

    data = tmp_path / "math.jsonl"
    records = [
        {"problem": "p0", "solution": r"so \boxed{(3, 2)}"},
        {"problem": "p1", "solution": r"so \boxed{\frac{1}{}", "answer": r"\frac{1}{"},
        {"problem": "p2", "solution": r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    with pytest.raises(BadReferenceError, match="math-train-00001"):
        MathEnv(dataset=str(data), dataset_format="math", num_tasks=None)
    with pytest.warns(UserWarning, match="dropped 1 of 3"):
        env = MathEnv(dataset=str(data), dataset_format="math", num_tasks=None, on_bad_reference="skip")
    assert env.num_tasks == 2
    env.reset(options={"task_id": "math-train-00002"})
    _, reward, *_ = env.step(r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}")
    assert reward == 1.0


class _LazyTasks:
    """A non-list task source: checked task by task when drawn."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Task:
        return Task(prompt=f"q{index}", reference=["7", "x^2+"][index], id=f"lazy-{index}")


def test_a_lazy_source_is_checked_when_a_task_is_drawn() -> None:
    env = MathEnv(tasks=_LazyTasks())
    env.reset(options={"task_id": 0})
    assert env.step(r"\boxed{7}")[1] == 1.0
    with pytest.raises(BadReferenceError, match=r"task 'lazy-1'.*ends too early"):
        env.reset(options={"task_id": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert MathEnv(tasks=_LazyTasks(), on_bad_reference="skip").num_tasks == 1


@pytest.mark.parametrize(
    ("completion", "reference"),
    [
        (r"\boxed{\begin{pmatrix} 9^{9^{9^{9}}} \\ 1 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        (r"\boxed{(9^{9^{9^{9}}}, 1]}", r"(0, 1]"),
        (r"\boxed{x = 9^{9^{9^{9}}}!}", r"2x+2=0"),
    ],
)
def test_structured_adversaries_stay_bounded_and_the_verifier_keeps_working(completion: str, reference: str) -> None:
    timeout = 1.0
    check_math_answer(r"(0, 1]", r"(0, 1]")  # the worker is up, so the time below is the answer's own
    start = time.monotonic()
    result = verify_math_answer(completion, reference, timeout=timeout)
    elapsed = time.monotonic() - start
    assert result.reward == 0.0 and result.reason in ("wrong", "timeout", "parse_failed"), result
    assert elapsed < timeout + 0.5, f"took {elapsed:.2f} s"
    assert verify_math_answer(r"\boxed{(0, 1]}", r"(0, 1]", timeout=timeout).correct


#: The reference answers of MATH-500 (the 500-problem sample of MATH's test split in
#: openai/prm800k, MIT; problems from MATH, Hendrycks et al., 2021, MIT): answers only.
MATH500 = Path(__file__).parent / "data" / "math500_answers.jsonl"


def test_every_math500_reference_parses_and_verifies_against_itself() -> None:
    answers = [json.loads(line)["answer"] for line in MATH500.read_text(encoding="utf-8").splitlines()]
    assert len(answers) == 500
    problems = {a: p for a, p in zip(answers, check_references(answers), strict=True) if p is not None}
    assert problems == {}
    wrong = [a for a in answers if not verify_math_answer(f"so the answer is $\\boxed{{{a}}}$.", a).correct]
    assert wrong == []
