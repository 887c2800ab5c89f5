"""grpo/Math-v0: the Gymnasium contract, the task generator and split, the loaders, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

import grpo_envs  # noqa: F401 - registers grpo/Math-v0
from grpo_envs import Task
from grpo_envs.envs.math import MathEnv
from grpo_envs.tasks.math import ProceduralMathTasks, format_polynomial, load_gsm8k, load_math, split_of

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K = str(FIXTURES / "gsm8k_sample.jsonl")
MATH = str(FIXTURES / "math_sample.jsonl")


def boxed(answer: str) -> str:
    return f"Working it out step by step... the result is $\\boxed{{{answer}}}$."


# -- Gymnasium contract -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"levels": 1, "split": "test"}, {"dataset": GSM8K}, {"dataset": MATH, "dataset_format": "math"}],
    ids=["default", "level1-test", "gsm8k-file", "math-file"],
)
def test_check_env_with_warnings_as_errors(kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("grpo/Math-v0", **kwargs)
        check_env(env.unwrapped)
        env.close()
        env.close()


def test_a_step_explains_its_reward() -> None:
    env = gym.make("grpo/Math-v0", levels=3)
    prompt, info = env.reset(seed=3)
    assert "\\boxed{}" in prompt and info["level"] == 3
    reference = env.unwrapped.task.reference
    _, reward, terminated, truncated, info = env.step(boxed(reference))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] is True and info["reason"] == "correct"
    assert info["parsed"] == reference and info["reference"] == reference
    env.reset(seed=3)
    _, reward, _, _, info = env.step(boxed("123456789"))
    assert (reward, info["correct"], info["reason"]) == (0.0, False, "wrong")


def test_same_seed_same_tasks_and_groups_by_task_id() -> None:
    env_a, env_b = MathEnv(), MathEnv()
    prompts_a = [env_a.reset(seed=s)[0] for s in range(15)]
    assert prompts_a == [env_b.reset(seed=s)[0] for s in range(15)]
    assert len(set(prompts_a)) > 10
    group = {env_a.reset(options={"task_id": 42})[0] for _ in range(8)}
    assert len(group) == 1


def test_generation_is_deterministic_and_the_seed_matters() -> None:
    a, b = ProceduralMathTasks(num_tasks=50, seed=0), ProceduralMathTasks(num_tasks=50, seed=0)
    assert [a[k] for k in range(50)] == [b[k] for k in range(50)]
    assert a[49] == a[-1]
    other = ProceduralMathTasks(num_tasks=50, seed=1)
    assert sum(a[k].prompt != other[k].prompt for k in range(50)) > 40
    with pytest.raises(IndexError):
        a[50]


@pytest.mark.parametrize("seeds", [(0, 0), (0, 1), (7, 3)])
def test_train_and_test_splits_never_share_a_question(seeds: tuple[int, int]) -> None:
    train = ProceduralMathTasks(num_tasks=3000, split="train", seed=seeds[0])
    test = ProceduralMathTasks(num_tasks=1000, split="test", seed=seeds[1])
    train_questions = {train[k].prompt for k in range(len(train))}
    test_questions = {test[k].prompt for k in range(len(test))}
    assert not train_questions & test_questions
    assert all(split_of(q) == "test" for q in test_questions)
    assert len(test_questions) > 500  # the test split is not a handful of repeats


def _solves(task: Task) -> bool:
    """Check a generated reference against the question, independently of the verifier."""
    import sympy

    question, reference, family = task.prompt, task.reference, task.meta["family"]
    if family == "arithmetic":
        expression = question.removeprefix("What is ").removeprefix("Calculate ").rstrip("?.")
        return Fraction(eval(expression)) == Fraction(reference)  # our own generated text, digits and + - * / ( )
    if family == "fractions":
        latex = question.split("$")[1]
        a, op, b = latex.replace("\\frac", "").replace("}{", "/").replace("{", "(").replace("}", ")").split(" ")
        op = {"\\times": "*", "\\div": "/"}.get(op, op)
        return sympy.sympify(f"{a}{op}{b}") == sympy.Rational(reference)
    if family == "linear_equation":
        lhs, rhs = (re.sub(r"(\d)x", r"\1*x", side) for side in question.split("$")[3].split("="))
        return sympy.solve(sympy.sympify(lhs) - sympy.sympify(rhs), sympy.Symbol("x")) == [sympy.Rational(reference)]
    from grpo_envs.verify.math_sympy import parse_answer  # the parser has its own tests

    answer = parse_answer(reference)[0]
    if family == "radical":
        match = re.fullmatch(r"Find the positive solution of \$(\d+)x\^2 = (\d+)\$\.", question)
        assert match, question
        a, b = map(int, match.groups())
        return bool(answer > 0) and sympy.simplify(a * answer**2 - b) == 0
    assert family == "expand"
    return "(" not in reference and sympy.expand(parse_answer(question.split("$")[1])[0] - answer) == 0


def test_every_level_generates_correct_references() -> None:
    tasks = ProceduralMathTasks(num_tasks=100, seed=11)
    families = set()
    for k in range(len(tasks)):
        task = tasks[k]
        families.add(task.meta["family"])
        assert task.meta["level"] == [1, 2, 3, 4, 5][k % 5]
        assert _solves(task), task
    assert families == {"arithmetic", "fractions", "linear_equation", "expand", "radical"}
    env = MathEnv(levels=5, num_tasks=20)
    for k in range(20):  # the verifier accepts every level-5 reference, and rejects a near miss
        env.reset(options={"task_id": k})
        assert env.step(boxed(env.task.reference if env.task else ""))[1] == 1.0
        env.reset(options={"task_id": k})
        assert env.step(boxed(env.tasks[k].reference + "+1"))[1] == 0.0


def test_an_expand_task_needs_the_expanded_form() -> None:
    env = MathEnv(levels=5)
    k = next(k for k in range(50) if env.tasks[k].meta["family"] == "expand")
    product = env.tasks[k].prompt.split("$")[1]  # the question's own, equal, product
    env.reset(options={"task_id": k})
    _, reward, _, _, info = env.step(boxed(product))
    assert (reward, info["reason"]) == (0.0, "wrong") and "expanded" in info["message"]
    env.reset(options={"task_id": k})
    assert env.step(boxed(env.tasks[k].reference))[1] == 1.0


def test_level_one_is_small_integer_arithmetic() -> None:
    tasks = ProceduralMathTasks(levels=1, num_tasks=200)
    for k in range(200):
        task = tasks[k]
        assert task.prompt.startswith("What is ") and abs(int(task.reference)) <= 144


def test_format_polynomial() -> None:
    assert format_polynomial([1, 2, 1]) == "x^2+2x+1"
    assert format_polynomial([2, -6, 4]) == "2x^2-6x+4"
    assert format_polynomial([1, 0, -9]) == "x^2-9"
    assert format_polynomial([-1, 1, 0]) == "-x^2+x"


# -- configuration ----------------------------------------------------------------------------


def test_prompt_template_and_strategies_are_configurable() -> None:
    env = MathEnv(levels=1, prompt_template="Q: {question}\nA (after ####):", strategies=("hash",))
    prompt, _ = env.reset(seed=0)
    assert prompt.startswith("Q: What is") and prompt.endswith("A (after ####):")
    reference = env.task.reference if env.task else ""
    assert env.step(f"#### {reference}")[1] == 1.0
    env.reset(seed=0)
    _, reward, _, _, info = env.step(boxed(reference))  # \boxed{} is not looked for
    assert reward == 0.0 and info["reason"] == "parse_failed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": 7}, "levels must be"),
        ({"levels": []}, "levels must be"),
        ({"split": "validation"}, "split must be one of"),
        ({"num_tasks": 0}, "num_tasks must be"),
        ({"strategies": ["guess"]}, "strategies must be"),
        ({"strategies": "boxed"}, "strategies must be"),
        ({"timeout": 0}, "timeout must be"),
        ({"prompt_template": "no placeholder"}, "must contain"),
        ({"dataset": GSM8K, "dataset_format": "csv"}, "dataset_format must be"),
        ({"dataset": GSM8K, "tasks": [Task("q", "1")]}, "either tasks= or dataset="),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MathEnv(**kwargs)


def test_custom_tasks() -> None:
    env = MathEnv(tasks=[Task("What is 6 * 7?", "42", id="q42")])
    prompt, _ = env.reset(options={"task_id": "q42"})
    assert prompt.startswith("What is 6 * 7?")
    assert env.step("The answer is 42.")[1] == 1.0


# -- loaders ----------------------------------------------------------------------------------


def test_load_gsm8k_fixture() -> None:
    tasks = load_gsm8k(GSM8K)
    assert [t.reference for t in tasks] == ["72", "80", "180", "1500", "33", "-7"]
    assert tasks[0].prompt.startswith("A baker") and tasks[0].id == "gsm8k-train-00000"
    assert len(load_gsm8k(GSM8K, split="test", limit=2)) == 2


def test_load_math_fixture() -> None:
    tasks = load_math(MATH, split="test")
    references = [t.reference for t in tasks]
    assert references == ["\\frac{1}{4}", "\\frac{\\sqrt{2}}{2}", "x^2+2x+1", "\\frac{7}{2}", "5\\sqrt{2}", "(3,2)"]
    assert tasks[0].meta == {"source": "math", "level": 1, "type": "Counting & Probability"}


@pytest.mark.parametrize(("path", "fmt"), [(GSM8K, "gsm8k"), (MATH, "math")])
def test_dataset_env_accepts_each_reference(path: str, fmt: str) -> None:
    env = MathEnv(dataset=path, dataset_format=fmt, num_tasks=None)
    for k in range(env.num_tasks):
        env.reset(options={"task_id": k})
        _, reward, _, _, info = env.step(boxed(env.tasks[k].reference))
        assert reward == 1.0, info


def test_loader_errors() -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_gsm8k(str(FIXTURES / "missing.jsonl"))
    with pytest.raises(ValueError, match="not GSM8K-format"):
        load_gsm8k(MATH)
    with pytest.raises(ValueError, match="not MATH-format"):
        load_math(GSM8K)


def test_a_hub_name_goes_to_datasets_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        return datasets.Dataset.from_list([{"question": "1+1?", "answer": "1+1=2\n#### 2"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    tasks = load_gsm8k("openai/gsm8k", split="test", config="main")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert tasks[0].reference == "2"


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, b"\\boxed{4}", 4])
def test_non_str_action_raises_type_error(bad: object) -> None:
    env = MathEnv(levels=1)
    env.reset(seed=0)
    with pytest.raises(TypeError, match="must be a str"):
        env.step(bad)  # type: ignore[arg-type]


def test_step_before_reset_raises() -> None:
    env = MathEnv(levels=1)
    with pytest.raises(ResetNeeded):
        env.step("\\boxed{1}")
    env.reset(seed=0)
    env.step("\\boxed{1}")
    with pytest.raises(ResetNeeded):  # one step per episode
        env.step("\\boxed{1}")


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{9^{9^{9^9}}}",
        "The answer is 10**10**8",
        "\\boxed{" + "7" * 100_000 + "}",
        "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
        "\\boxed{\x00\x01\x02}",
    ],
    ids=["tower", "python-tower", "100KB", "nested-5000", "control-chars"],
)
def test_adversarial_completion_scores_zero_and_the_env_keeps_working(completion: str) -> None:
    timeout = 1.0
    env = MathEnv(levels=5, timeout=timeout, max_completion_length=200_000)
    env.reset(options={"task_id": 0})
    env.step(boxed(env.tasks[0].reference))  # the worker is up: the time below is the answer's own
    env.reset(options={"task_id": 4})
    start = time.monotonic()
    _, reward, terminated, _, info = env.step(completion)
    assert time.monotonic() - start < timeout + 0.5
    assert (reward, terminated, info["correct"]) == (0.0, True, False)
    assert info["reason"] in ("timeout", "parse_failed"), info
    env.reset(options={"task_id": 4})
    _, reward, _, _, info = env.step(boxed(env.tasks[4].reference))
    assert reward == 1.0 and info["reason"] == "correct"


def test_completion_over_the_action_space_bound_is_parse_failed() -> None:
    env = MathEnv(levels=1)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("1" * (env.action_space.max_length + 1))
    assert reward == 0.0 and info["reason"] == "parse_failed"


def test_demo_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "grpo_envs.demo"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("reward") >= 10
    assert "reward 1" in out.stdout and "reward 0" in out.stdout
