"""grpo/Code-v0: code extraction, program building, verdicts, task sources and the env.

HumanEval's 164 canonical solutions must score 1.0 and 164 stubs 0 (the issue's "done when").
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers the ids
from grpo_envs.envs.code import CodeEnv
from grpo_envs.sandbox import OK, FunctionTests, IOTests, SandboxResult, default_sandbox
from grpo_envs.sandbox import TestOutcome as Outcome
from grpo_envs.tasks.base import Task
from grpo_envs.tasks.code import (
    CodeReference,
    load_builtin_tasks,
    load_code_dataset,
    load_humaneval,
    records_to_tasks,
    split_check_function,
)
from grpo_envs.verify.code import (
    build_job,
    build_program,
    extract_code,
    to_verify_result,
)

MBPP_FILE = "tests/fixtures/mbpp_sample.jsonl"
APPS_FILE = "tests/fixtures/apps_sample.jsonl"
PROMPT = 'def double(x: int) -> int:\n    """Return twice x."""\n'
REFERENCE = CodeReference(
    tests=FunctionTests(tests=("assert candidate(2) == 4",), setup=PROMPT, bind={"candidate": "double"}),
    prefix=PROMPT,
    entry_point="double",
    solution="    return 2 * x\n",
)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    import pathlib

    monkeypatch.chdir(pathlib.Path(__file__).resolve().parents[1])


# -- extraction and programs ---------------------------------------------------------------


def test_extract_code_from_fences() -> None:
    assert extract_code("no fence here") is None
    assert extract_code("Sure:\n```python\nx = 1\n```\nDone.") == "x = 1\n"
    assert extract_code("```\ny = 2\n```") == "y = 2\n"
    assert extract_code("```bash\nls\n```") is None
    two = (
        "```python\ndef helper():\n    pass\n```\ntext\n```python\ndef double(x):\n    return 2 * x\n```\n"
        "```python\nprint(1)\n```"
    )
    assert extract_code(two, "double").startswith("def double")
    assert extract_code(two) == "print(1)\n"
    assert extract_code("```python\ndef cut_off(x):\n    return") == "def cut_off(x):\n    return"


def test_build_program_variants() -> None:
    body = build_program(REFERENCE, "    return 2 * x\n")
    assert body is not None and body[0] == PROMPT + "    return 2 * x\n"
    full = build_program(REFERENCE, "def double(x):\n    return x + x\n")
    assert full is not None and full[0].startswith(PROMPT.rstrip()) and full[0].endswith("return x + x\n")
    fenced = build_program(REFERENCE, "Here you go:\n```python\ndef double(x):\n    return x * 2\n```")
    assert fenced is not None and fenced[1] == "def double(x):\n    return x * 2\n"
    assert build_program(REFERENCE, "   \n") is None
    no_prefix = CodeReference(tests=IOTests(cases=(("", "1"),)))
    assert build_program(no_prefix, "print(1)") == ("print(1)", "print(1)")


def _result(
    status: str, outcomes: list[str], error_type: str | None = None, test_error: str | None = None
) -> SandboxResult:
    tests = tuple(Outcome(i, s, error_type=test_error if s == "error" else None) for i, s in enumerate(outcomes))
    return SandboxResult(status=status, tests=tests, error_type=error_type)


@pytest.mark.parametrize(
    ("result", "reason", "reward_all", "reward_fraction"),
    [
        (_result(OK, ["passed", "passed"]), "correct", 1.0, 1.0),
        (_result(OK, ["passed", "failed"]), "wrong", 0.0, 0.5),
        (_result(OK, ["error", "not_run"], test_error="TypeError"), "runtime_error", 0.0, 0.0),
        (_result("failed", ["not_run"], error_type="SyntaxError"), "syntax_error", 0.0, 0.0),
        (_result("failed", ["not_run"], error_type="IndentationError"), "syntax_error", 0.0, 0.0),
        (_result("failed", ["not_run"], error_type="SystemExit"), "exited", 0.0, 0.0),
        (_result("failed", ["passed", "error"], error_type="ProcessExit"), "exited", 0.0, 0.5),
        (_result("failed", ["not_run"], error_type="NameError"), "runtime_error", 0.0, 0.0),
        (_result("timeout", ["passed", "not_run", "not_run", "not_run"]), "timeout", 0.0, 0.25),
        (_result("memory", ["error"]), "memory", 0.0, 0.0),
        (_result("killed", ["error"]), "killed", 0.0, 0.0),
        (_result("error", ["not_run"]), "error", 0.0, 0.0),
        (_result(OK, []), "wrong", 0.0, 0.0),
    ],
)
def test_verdicts(result: SandboxResult, reason: str, reward_all: float, reward_fraction: float) -> None:
    verdict = to_verify_result(result)
    assert (verdict.reason, verdict.reward) == (reason, reward_all)
    assert to_verify_result(result, reward_mode="fraction").reward == pytest.approx(reward_fraction)
    assert verdict.correct is (reason == "correct")


def test_build_job_rejects_unknown_reward_mode() -> None:
    with pytest.raises(ValueError, match="reward_mode"):
        build_job(REFERENCE, "    return 2 * x\n", timeout=1.0, reward_mode="most")


# -- task sources ----------------------------------------------------------------------------


def test_split_check_function_groups_statements_into_tests() -> None:
    setup, tests = split_check_function(
        "METADATA = {}\n\ndef check(candidate):\n    import math\n    assert True\n"
        "    assert candidate(1) == 2\n    for i in range(3):\n        assert candidate(i) == 2 * i\n    x = 1\n"
    )
    assert setup == "METADATA = {}"
    assert len(tests) == 2
    assert tests[0].startswith("import math\nassert True\nassert candidate(1) == 2")
    assert tests[1].endswith("x = 1")
    with pytest.raises(ValueError, match="check"):
        split_check_function("def other(candidate):\n    assert candidate(1)\n")
    with pytest.raises(ValueError, match="never asserts"):
        split_check_function("def check(candidate):\n    assert True\n")


def test_builtin_tasks_have_levels_tests_and_solutions() -> None:
    tasks = load_builtin_tasks()
    assert len(tasks) >= 40
    assert {t.meta["level"] for t in tasks} == {1, 2, 3}
    assert len({t.id for t in tasks}) == len(tasks)
    assert any(isinstance(t.reference.tests, IOTests) for t in tasks)
    assert all(t.reference.num_tests >= 3 and t.reference.solution for t in tasks)
    assert {t.meta["level"] for t in load_builtin_tasks(levels=[2])} == {2}


def _score(env: CodeEnv, task: Task, completions: list[str]) -> list[float]:
    return [v.reward for v in env.verify_many(task, completions)]


def test_builtin_solutions_pass_and_stubs_fail() -> None:
    env = CodeEnv("builtin")
    tasks = list(env.tasks)
    jobs = []
    for task in tasks:
        stub = "    return None\n" if task.reference.prefix else "print('?')\n"
        jobs += [
            build_job(task.reference, task.reference.solution, timeout=5.0)[0],
            build_job(task.reference, stub, timeout=5.0)[0],
        ]
    results = env.sandbox.run_many(jobs)
    for i, task in enumerate(tasks):
        assert to_verify_result(results[2 * i]).reward == 1.0, (task.id, results[2 * i])
        assert to_verify_result(results[2 * i + 1]).reward == 0.0, task.id


def test_humaneval_canonical_solutions_pass_and_stubs_fail() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164
    sandbox = default_sandbox()
    canonical = sandbox.run_many([build_job(t.reference, t.reference.solution, timeout=5.0)[0] for t in tasks])
    failing = [t.id for t, r in zip(tasks, canonical, strict=True) if to_verify_result(r).reward != 1.0]
    assert failing == []
    stubs = sandbox.run_many([build_job(t.reference, "    pass\n", timeout=5.0)[0] for t in tasks])
    passing = [t.id for t, r in zip(tasks, stubs, strict=True) if to_verify_result(r).reward != 0.0]
    assert passing == []


def test_mbpp_and_apps_records_from_local_files() -> None:
    mbpp = load_code_dataset(MBPP_FILE)
    assert [t.id for t in mbpp] == ["mbpp/9001", "mbpp/9002", "mbpp/9003"]
    assert "shared_elements((3, 4, 5, 6)" in mbpp[0].prompt  # the first test shows the signature
    apps = load_code_dataset(APPS_FILE)
    assert isinstance(apps[0].reference.tests, IOTests) and isinstance(apps[1].reference.tests, FunctionTests)
    env = CodeEnv(mbpp + apps)
    for task in env.tasks:
        assert _score(env, task, [task.reference.solution, "x = 1\n"]) == [1.0, 0.0], task.id
    with_challenge = records_to_tasks(
        [
            {
                "task_id": 1,
                "text": "t",
                "code": "def f():\n    return 1\n",
                "test_list": ["assert f() == 1"],
                "challenge_test_list": ["assert f() != 2"],
            }
        ],
        include_challenge_tests=True,
    )
    assert with_challenge[0].reference.num_tests == 2
    with pytest.raises(ValueError, match="style"):
        records_to_tasks([{"text": "x"}], style="leetcode")


# -- the environment -----------------------------------------------------------------------------


def test_env_rewards_and_info() -> None:
    env = gym.make("grpo/Code-v0", source="builtin", levels=[1])
    prompt, info = env.reset(options={"task_id": "builtin/L1-clamp"})
    assert prompt.startswith("def clamp") and info["level"] == 1
    _, reward, terminated, truncated, info = env.step("    return max(low, min(x, high))\n")
    assert (reward, terminated, truncated, info["reason"], info["tests_passed"]) == (1.0, True, False, "correct", 5)
    assert info["reference"] == {"entry_point": "clamp", "num_tests": 5}  # never the tests themselves
    env.reset(options={"task_id": "builtin/L1-clamp"})
    _, reward, _, _, info = env.step("```python\ndef clamp(x, low, high):\n    return low\n```")
    assert reward == 0.0 and info["reason"] == "wrong"
    env.reset(options={"task_id": "builtin/L1-clamp"})
    _, reward, _, _, info = env.step("")
    assert reward == 0.0 and info["reason"] == "parse_failed"
    env.reset(options={"task_id": "builtin/L1-clamp"})
    _, reward, _, _, info = env.step("    return max(low, min(x, high)\n")
    assert info["reason"] == "syntax_error"
    env.close()


def test_fraction_reward_mode() -> None:
    env = CodeEnv("builtin", reward_mode="fraction")
    task = next(t for t in env.tasks if t.id == "builtin/L1-clamp")
    partial = "    return x if low <= x <= high else low\n"  # wrong only above the interval
    rewards = _score(env, task, [partial, task.reference.solution])
    assert 0.0 < rewards[0] < 1.0 and rewards[1] == 1.0


def test_io_task_through_the_env() -> None:
    env = CodeEnv("builtin", levels=[1])
    task = next(t for t in env.tasks if t.id == "builtin/L1-io-sum-pairs")
    good = (
        "```python\nn = int(input())\nfor _ in range(n):\n    a, b = map(int, input().split())\n    print(a + b)\n```"
    )
    assert _score(env, task, [good, "print(3)\nprint(7)\n"]) == [1.0, 0.0]


def test_prompt_template_and_bad_arguments() -> None:
    env = CodeEnv("builtin", levels=[1], prompt_template="Complete this function:\n```python\n{prompt}```")
    prompt, _ = env.reset(seed=3)
    assert prompt.startswith("Complete this function:\n```python\n")
    assert prompt.endswith('"""\n```')
    with pytest.raises(ValueError, match="reward_mode"):
        CodeEnv(reward_mode="partial")
    with pytest.raises(ValueError, match="timeout"):
        CodeEnv(timeout=0)
    with pytest.raises(ValueError, match="levels"):
        CodeEnv("humaneval", levels=[1])
    with pytest.raises(ValueError, match="prompt"):
        CodeEnv(prompt_template="no placeholder")


def test_group_of_completions_for_grpo() -> None:
    env = CodeEnv("builtin", levels=[2], timeout=1.0)
    task = next(t for t in env.tasks if t.id == "builtin/L2-digital-root")
    group = [task.reference.solution, "    return n % 9\n", "    return 0\n", "", "    while True: pass\n"]
    verdicts = env.verify_many(task, group)
    assert [v.reward for v in verdicts] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert [v.reason for v in verdicts][3] == "parse_failed"


def test_loading_a_dataset_without_the_datasets_package_says_how_to_install_it(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ModuleNotFoundError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    from grpo_envs.tasks.code import load_code_dataset

    with pytest.raises(ModuleNotFoundError, match=r"grpo-gym\[datasets\]"):
        load_code_dataset(str(tmp_path / "mbpp.jsonl"))
