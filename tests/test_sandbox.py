"""The code sandbox: isolation, faults, reward integrity, the value codec and the BPF filter.

The fault list (tests/fixtures/sandbox_faults.py) runs as the test process's user and, when
the tests run as root, a second time as ``nobody`` with an interpreter that user can read,
with and without user namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from grpo_envs.sandbox import (
    DEFAULT_PRELOAD,
    ERROR,
    FAILED,
    OK,
    FunctionTests,
    IOTests,
    Opaque,
    ResourceLimits,
    Sandbox,
    SandboxJob,
    SandboxResult,
    codec,
    landlock,
    seccomp,
)
from grpo_envs.sandbox import (
    TestOutcome as Outcome,
)
from grpo_envs.sandbox.channel import ChannelClosed, read_frame, write_frame
from grpo_envs.sandbox.process_results import remove_tree
from grpo_envs.sandbox.zygote import UNREADABLE_INTERPRETER_PRELOAD
from grpo_envs.tasks.code import BUILTIN_TASKS_FILE, humaneval_path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(FIXTURES))
import sandbox_faults  # noqa: E402

IS_ROOT = os.geteuid() == 0
ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    box = Sandbox(max_workers=2)
    yield box
    box.close()


def hidden_files() -> list[str]:
    return [humaneval_path(), BUILTIN_TASKS_FILE]


# -- the fault list -------------------------------------------------------------------------


def test_fault_list(sandbox: Sandbox) -> None:
    report = sandbox_faults.run_faults(sandbox, str(ROOT), os.path.expanduser("~"), hidden_files())
    assert report["violations"] == [], json.dumps(report["outcomes"], indent=1)
    layers = report["layers"]
    assert layers["process_group"] and layers["private_workdir"] and layers["scrubbed_env"]
    assert layers["separate_test_process"]
    assert "as" in layers["rlimits"] and "fsize" in layers["rlimits"]
    if IS_ROOT:
        assert layers["unprivileged_uid"] == 65534
        # root may mount: the data directories are covered by empty tmpfs mounts, and the report
        # says so (it once said False: the probe took "lists an empty directory" for "reads it")
        assert layers["hidden_paths"] in ("mount_namespace", "mount_namespace+landlock")


def _readable_by_others(path: str) -> bool:
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & stat.S_IROTH:
        return False
    parent = os.path.dirname(path)
    while parent and parent != "/":
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(parent)
    return True


def _interpreter_for_nobody() -> str | None:
    """A Python >= 3.10 that uid nobody can execute (the venv's may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _readable_by_others(candidate):
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True, text=True
            )
            if version.stdout.strip() == "True":
                return candidate
    return None


def _run_as_nobody(tmp_path: Path, sandbox_kwargs: dict, skip: tuple[str, ...] = ()) -> dict:
    python = _interpreter_for_nobody()
    if not IS_ROOT:
        pytest.skip("already running as an ordinary user: test_fault_list covers it")
    if python is None or not _readable_by_others(str(ROOT / "grpo_envs" / "sandbox" / "pool.py")):
        pytest.skip("no Python >= 3.10 (or project checkout) that uid nobody can read on this host")
    tmp_path.chmod(0o755)
    home, project = tmp_path / "home", tmp_path / "project"
    for directory in (home, project):  # directories the unprivileged user owns
        directory.mkdir()
        os.chown(directory, 65534, 65534)
    config = {
        "hidden_paths": [os.path.dirname(humaneval_path()), str(ROOT / "grpo_envs" / "data")],
        "hidden_files": hidden_files(),
        "probe_dir": str(project),
        "home_dir": str(home),
        "sandbox": sandbox_kwargs,
        "skip": list(skip),
    }
    out = subprocess.run(
        [python, str(FIXTURES / "run_sandbox_faults.py"), str(ROOT / "grpo_envs"), json.dumps(config)],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["uid"] == 65534
    return report


def test_fault_list_as_unprivileged_user(tmp_path: Path) -> None:
    if not landlock.abi_version():
        pytest.skip("without Landlock an unprivileged sandbox cannot keep programs out of the user's own files")
    report = _run_as_nobody(tmp_path, {})
    assert report["violations"] == [], json.dumps(report["outcomes"], indent=1)
    assert report["layers"]["unprivileged_uid"] is False  # already unprivileged
    if report["layers"]["network_namespace"] == "userns+netns":  # mounts allowed in the user namespace
        assert report["layers"]["hidden_paths"] == "mount_namespace"
    else:
        assert report["layers"]["hidden_paths"] == "landlock"


def test_fault_list_as_unprivileged_user_without_user_namespaces(tmp_path: Path) -> None:
    """A host that forbids user namespaces: no network namespace, the rest still holds."""
    report = _run_as_nobody(tmp_path, {"network_namespace": False}, skip=("fill_disk",))
    assert report["layers"]["network_namespace"] is False and report["layers"]["workdir_quota"] is False
    if report["layers"].get("seccomp") and report["layers"].get("landlock"):
        assert report["violations"] == [], json.dumps(report["outcomes"], indent=1)
        assert report["layers"]["hidden_paths"] == "landlock"  # no mounts here: the carved read layer


def test_closing_the_sandbox_leaves_the_temporary_directory_as_it_was(tmp_path: Path) -> None:
    """The zygote's scratch directory is a tmpfs mount point that its own cleanup cannot remove;
    the cleanup once 'fixed' that by chmod 700 on its parent, /tmp, locking every other user out."""
    tmp = tempfile.gettempdir()
    before = os.stat(tmp).st_mode
    with Sandbox(max_workers=1) as box:
        assert box.run(SandboxJob(ADD, FunctionTests(tests=("assert add(1, 2) == 3",)))).all_passed
        base = box._base
    assert os.stat(tmp).st_mode == before
    assert base is not None and not os.path.exists(base)
    # the same for any tree whose top cannot be removed: its parent keeps its mode
    tree = tmp_path / "parent" / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub").chmod(0)
    (tmp_path / "parent").chmod(0o755)
    remove_tree(str(tree))
    assert not tree.exists() and stat.S_IMODE(os.stat(tmp_path / "parent").st_mode) == 0o755


def test_modules_left_out_of_the_preload_are_preloaded_only_where_programs_could_not_import_them() -> None:
    """threading's and random's at-fork handlers cost every candidate process, and every
    preloaded MiB costs every job; a program imports them from disk in a few ms, except as
    root without Landlock, where nobody may not read the interpreter."""
    assert not set(UNREADABLE_INTERPRETER_PRELOAD) & set(DEFAULT_PRELOAD)
    program = (
        "import calendar, dataclasses, difflib, pprint, queue, random, statistics, threading\n"
        "def f():\n    return threading.active_count() + queue.Queue().qsize() + int(random.random())\n"
    )
    job = SandboxJob(program, FunctionTests(tests=("assert f() == 1",)))
    with Sandbox(max_workers=1) as box:
        assert box.run(job).all_passed
        assert "math" in box.preloaded  # started
        assert ("threading" in box.preloaded) == (not landlock.abi_version() and IS_ROOT)
    if IS_ROOT:
        with Sandbox(max_workers=1, landlock=False) as box:
            assert box.run(job).all_passed
            assert set(UNREADABLE_INTERPRETER_PRELOAD) <= set(box.preloaded)


def test_the_fork_server_holds_only_the_candidates_side(sandbox: Sandbox) -> None:
    """A candidate process is a copy of the fork server, a fresh interpreter: none of the
    zygote's scheduling, the harness (which holds tests) or dataclasses is in it, and the
    AST types compile() needs are already built."""
    program = (
        "import sys\n"
        "def f():\n"
        "    return sorted(m for m in sys.modules if m.endswith(('zygote', 'harness', 'lane', 'pool')))\n"
        "def g():\n"
        "    return ['dataclasses' in sys.modules, '_ast' in sys.modules]\n"
    )
    result = sandbox.run(SandboxJob(program, FunctionTests(tests=("assert f() == []", "assert g() == [False, True]"))))
    assert result.all_passed, result


def test_hiding_the_directory_that_holds_the_package_still_starts() -> None:
    """The fork server is a fresh interpreter that imports this package: a hidden path above it
    cannot be mounted over before that interpreter starts, so Landlock hides it instead."""
    program = (
        "def f(path):\n"
        "    try:\n"
        "        open(path).close()\n"
        "        return 'read'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
    )
    marker = str(ROOT / "pyproject.toml")
    with Sandbox(max_workers=1, hidden_paths=[str(ROOT)]) as box:
        result = box.run(SandboxJob(program, FunctionTests(tests=(f"assert f({marker!r}) != 'read'",))))
        if landlock.abi_version():
            assert box.layers["hidden_paths"] == "landlock"
            assert result.all_passed, result
        else:  # neither mounts nor Landlock can hide it here: the report says so
            assert box.layers["hidden_paths"] is False


def test_rehearsal_leaves_the_process_as_it_was() -> None:
    """The fork server runs the candidate's side a few times before forking (warm bytecode):
    no descriptor, CPU limit or standard stream of its own may change."""
    import resource

    from grpo_envs.sandbox import candidate

    fds = set(os.listdir("/proc/self/fd"))
    limit = resource.getrlimit(resource.RLIMIT_CPU)
    streams = sys.stdin, sys.stdout, sys.stderr
    candidate.rehearse(times=2)
    assert set(os.listdir("/proc/self/fd")) == fds
    assert resource.getrlimit(resource.RLIMIT_CPU) == limit
    assert (sys.stdin, sys.stdout, sys.stderr) == streams


def test_degraded_layers_still_contain_faults_as_root() -> None:
    """Without seccomp and Landlock (old kernels, other architectures), root still isolates
    with the unprivileged uid, rlimits, the network namespace and mount-hidden test files.
    Without seccomp's pid check, ``kill(-1)`` can reach other jobs of the same uid, so that
    fault is left out here (and documented)."""
    if not IS_ROOT:
        pytest.skip("the degraded layers that remain are root's (uid drop, mount namespace)")
    with Sandbox(max_workers=2, seccomp=False, landlock=False) as box:
        layers = box.layers
        assert layers["seccomp"] is False and layers.get("landlock") is not True
        report = sandbox_faults.run_faults(
            box, str(ROOT), os.path.expanduser("~"), hidden_files(), skip=("kill_everyone",)
        )
    # what must still hold is that nothing harmed the host or leaked the tests; with exec
    # allowed, the daemon fault's function returns its value (its process is killed after)
    harmful = [v for v in report["violations"] if "reason" not in v and not v.startswith("daemon: reward")]
    assert harmful == [], json.dumps(report["outcomes"], indent=1)


# -- behaviour users rely on ------------------------------------------------------------------


def test_function_tests_report_each_test(sandbox: Sandbox) -> None:
    result = sandbox.run(
        SandboxJob(
            ADD, FunctionTests(tests=("assert add(1, 2) == 3", "assert add(1, 1) == 3", "assert add('a', 'b') == 'ab'"))
        )
    )
    assert result.status == OK
    assert [t.status for t in result.tests] == ["passed", "failed", "passed"]
    assert result.num_passed == 2 and not result.all_passed


def test_stop_on_failure_marks_the_rest_not_run(sandbox: Sandbox) -> None:
    result = sandbox.run(
        SandboxJob(ADD, FunctionTests(tests=("assert add(1, 1) == 3", "assert add(1, 2) == 3")), stop_on_failure=True)
    )
    assert [t.status for t in result.tests] == ["failed", "not_run"]


def test_bind_setup_and_expected_exceptions(sandbox: Sandbox) -> None:
    program = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n"
    tests = FunctionTests(
        setup="import math\nTOLERANCE = 1e-9\n",
        tests=(
            "assert math.isclose(candidate(9), 3.0, abs_tol=TOLERANCE)",
            "try:\n    candidate(-1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no error')",
            "assert root(x=4) == 2.0",
        ),
        bind={"candidate": "root"},
    )
    result = sandbox.run(SandboxJob(program, tests))
    assert result.all_passed, result


def test_candidate_exception_is_a_test_error(sandbox: Sandbox) -> None:
    result = sandbox.run(SandboxJob("def f():\n    return 1 / 0\n", FunctionTests(tests=("assert f() == 1",))))
    assert result.status == OK
    assert result.tests[0].status == "error" and result.tests[0].error_type == "ZeroDivisionError"


def test_syntax_error_is_reported_even_when_the_program_exits_mid_request(sandbox: Sandbox) -> None:
    # The program answers the load request with its SyntaxError and exits while the harness
    # is still writing the (pipe-buffer-sized) inputs behind it: the verdict must survive.
    # This raced in CI as "the program's process exited" before the harness read the answer.
    big = "x" * 300_000
    program = "def f(x:\n    return 1\n"
    for tests in (
        FunctionTests(tests=tuple(f"assert f({big!r}) == 1" for _ in range(2))),
        IOTests(cases=((big, "1"),)),
        FunctionTests(tests=("assert f(1) == 1",)),
    ):
        for _ in range(3):
            result = sandbox.run(SandboxJob(program, tests))
            assert (result.status, result.error_type) == (FAILED, "SyntaxError"), result


def test_values_cross_with_exact_types(sandbox: Sandbox) -> None:
    program = (
        "def f():\n    return [1, (2.5, 'x'), {'k': {1, 2}}, b'\\x00', None, True, 3 + 4j, frozenset([7])]\n"
        "def g():\n    return (1, 2)\n"
    )
    tests = FunctionTests(
        tests=(
            "assert f() == [1, (2.5, 'x'), {'k': {1, 2}}, b'\\x00', None, True, 3 + 4j, frozenset([7])]",
            "assert type(f()[5]) is bool and type(f()[1]) is tuple",
            "assert g() != [1, 2]",
        )
    )
    assert sandbox.run(SandboxJob(program, tests)).all_passed


def test_io_tests_and_compare_modes(sandbox: Sandbox) -> None:
    program = "a, b = map(int, input().split())\nprint(a + b, ' ')\nprint('done')\n"
    cases = (("1 2\n", "3\ndone\n"), ("5 5\n", "10\ndone"))
    for compare in ("tokens", "lines"):
        result = sandbox.run(SandboxJob(program, IOTests(cases=cases, compare=compare)))
        assert result.all_passed, (compare, result)
    exact = sandbox.run(SandboxJob(program, IOTests(cases=cases, compare="exact")))
    assert exact.status == OK and exact.num_passed == 0


def test_io_program_may_exit_after_printing(sandbox: Sandbox) -> None:
    program = "import sys\nprint(int(input()) * 2)\nsys.exit(0)\nprint('never')\n"
    assert sandbox.run(SandboxJob(program, IOTests(cases=(("21\n", "42\n"),)))).all_passed


def test_plain_run_captures_output(sandbox: Sandbox) -> None:
    ok = sandbox.run(SandboxJob("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n"))
    assert ok.status == OK and ok.stdout == "hello\n" and ok.stderr == "oops\n"
    raised = sandbox.run(SandboxJob("raise KeyError('boom')\n"))
    assert raised.status == FAILED and raised.error_type == "KeyError"


def test_output_is_truncated(sandbox: Sandbox) -> None:
    result = sandbox.run(SandboxJob("print('y' * 100000)\n"))
    assert result.status == OK
    assert result.stdout.endswith("[... output truncated]") and len(result.stdout) < 10000


def test_working_directory_is_private_empty_and_removed(sandbox: Sandbox) -> None:
    program = (
        "import os\ndef f():\n    before = os.listdir('.')\n    open('scratch.txt', 'w').write('x')\n"
        "    return [before, os.getcwd(), sorted(os.environ)]\n"
    )
    first = sandbox.run(SandboxJob(program, FunctionTests(tests=("assert f()[0] == []",))))
    assert first.all_passed, first
    # read the first job's directory and environment back through a failing-test message
    message = sandbox.run(SandboxJob(program, FunctionTests(tests=("assert False, repr(f())",)))).tests[0].message
    cwd = message.split("'")[1]
    deadline = time.monotonic() + 5  # removed once the killed process's exit is reported
    while os.path.exists(cwd) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(cwd), "the working directory outlived the job"
    assert "GRPO_SECRET" not in message and "PATH" in message


def test_environment_is_scrubbed() -> None:
    os.environ["GRPO_SECRET_TOKEN"] = "hunter2"
    try:
        with Sandbox(max_workers=1) as box:
            program = "import os\ndef f():\n    return os.environ.get('GRPO_SECRET_TOKEN')\n"
            assert box.run(SandboxJob(program, FunctionTests(tests=("assert f() is None",)))).all_passed
    finally:
        del os.environ["GRPO_SECRET_TOKEN"]


def test_threads_work_inside_the_sandbox(sandbox: Sandbox) -> None:
    program = (
        "import threading\ndef f():\n    out = []\n"
        "    workers = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
        "    for w in workers:\n        w.start()\n    for w in workers:\n        w.join()\n"
        "    return sorted(out)\n"
    )
    assert sandbox.run(SandboxJob(program, FunctionTests(tests=("assert f() == [0, 1, 2, 3]",)))).all_passed


def test_lazy_imports_work(sandbox: Sandbox) -> None:
    """A module the zygote did not pre-import can still be imported by the program."""
    program = "def f():\n    import colorsys\n    return colorsys.rgb_to_hsv(1.0, 0.0, 0.0)\n"
    assert sandbox.run(SandboxJob(program, FunctionTests(tests=("assert f() == (0.0, 1.0, 1.0)",)))).all_passed


def test_run_many_keeps_order_and_runs_in_parallel(sandbox: Sandbox) -> None:
    jobs = [SandboxJob(f"def f():\n    return {i}\n", FunctionTests(tests=(f"assert f() == {i}",))) for i in range(12)]
    results = sandbox.run_many(jobs)
    assert all(r.all_passed for r in results)
    # two jobs on two workers overlap in time: each reports when its program ran
    sleepy = "import time\ndef f():\n    start = time.time()\n    time.sleep(0.3)\n    return [start, time.time()]\n"
    results = sandbox.run_many([SandboxJob(sleepy, FunctionTests(tests=("assert False, repr(f())",)))] * 2)
    spans = [json.loads(r.tests[0].message.split(": ", 1)[1]) for r in results]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_thread_safe_callers(sandbox: Sandbox) -> None:
    outcomes: list[bool] = []

    def worker(i: int) -> None:
        job = SandboxJob(f"def f():\n    return {i}\n", FunctionTests(tests=(f"assert f() == {i}",)))
        outcomes.append(sandbox.run(job).all_passed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [True] * 6


def test_sandbox_recovers_when_its_zygote_is_killed() -> None:
    box = Sandbox(max_workers=1).start()
    try:
        assert box._process is not None
        os.kill(box._process.pid, signal.SIGKILL)
        box._process.wait()
        result = box.run(SandboxJob(ADD, FunctionTests(tests=("assert add(2, 2) == 4",))))
        assert result.all_passed
    finally:
        box.close()
    assert box.run(SandboxJob(ADD, FunctionTests(tests=("assert add(2, 2) == 4",)))).all_passed  # usable after close
    box.close()


def test_broken_task_is_an_error_not_the_programs_fault(sandbox: Sandbox) -> None:
    bad_setup = sandbox.run(SandboxJob(ADD, FunctionTests(tests=("assert True",), setup="raise RuntimeError('bug')")))
    bad_test = sandbox.run(SandboxJob(ADD, FunctionTests(tests=("assert (",))))
    assert bad_setup.status == ERROR and "setup" in bad_setup.message
    assert bad_test.status == ERROR and "do not compile" in bad_test.message


def test_memory_limit_is_configurable() -> None:
    with Sandbox(max_workers=1, limits=ResourceLimits(memory=256 * 1024**2)) as box:
        program = "def f():\n    return len(bytearray(400 * 1024**2))\n"
        result = box.run(SandboxJob(program, FunctionTests(tests=("assert f() > 0",))))
    assert result.status == "memory"


def test_cpu_margin_is_configurable() -> None:
    """RLIMIT_CPU is the job's timeout rounded up plus ResourceLimits.cpu_margin."""
    program = "import resource\ndef f():\n    return list(resource.getrlimit(resource.RLIMIT_CPU))\n"
    with Sandbox(max_workers=1, limits=ResourceLimits(cpu_margin=4)) as box:
        result = box.run(SandboxJob(program, FunctionTests(tests=("assert f() == [6, 6]",)), timeout=1.5))
    assert result.all_passed, result


def test_invalid_jobs_are_rejected_with_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SandboxJob(ADD, timeout=0)
    with pytest.raises(ValueError, match="compare"):
        SandboxJob(ADD, IOTests(cases=(), compare="fuzzy"))
    with pytest.raises(TypeError, match="SandboxJob"):
        sandbox.run_many(["print(1)"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_workers"):
        Sandbox(max_workers=0)


# -- units ------------------------------------------------------------------------------------


def test_codec_round_trips_plain_data_exactly() -> None:
    value = [
        1,
        -(2**80),
        2.5,
        float("inf"),
        "é\n",
        None,
        True,
        (1, [2]),
        {"a": (1,)},
        {3},
        frozenset({4}),
        b"\x00\xff",
        1 - 2j,
        {(1, 2): "tuple key"},
    ]
    decoded = codec.decode(codec.encode(value))
    assert decoded == value
    assert [type(x) for x in decoded] == [type(x) for x in value]


def test_codec_turns_objects_into_opaque_values_that_equal_nothing() -> None:
    class Yes:
        def __eq__(self, other: object) -> bool:
            return True

    class Int(int):
        def __eq__(self, other: object) -> bool:
            return True

    for hostile in (Yes(), Int(3), [Int(1)]):
        decoded = codec.decode(codec.encode(hostile))
        assert decoded != hostile and decoded != 3 and decoded != [1]
    opaque = codec.decode(codec.encode(Yes()))
    assert isinstance(opaque, Opaque) and opaque != opaque


def test_codec_rejects_forged_payloads() -> None:
    for forged in (
        b"not json",
        b'["Z", 1]',
        b'["S", ["L", 1]]',
        b'["D", [1]]',
        b"[]",
        b'{"a": 1}',
        b'["B", "zz"]',
        b"[" * 5000 + b"]" * 5000,
    ):
        with pytest.raises(codec.CodecError):
            codec.decode(forged)


def test_frames_are_bounded() -> None:
    read_fd, write_fd = os.pipe()
    try:
        write_frame(write_fd, b"hello")
        assert read_frame(read_fd) == b"hello"
        write_frame(write_fd, b"x" * 100)
        with pytest.raises(ChannelClosed):
            read_frame(read_fd, max_size=10)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_seccomp_filter_checks_the_architecture_first() -> None:
    program = seccomp.build_filter(own_pid=1234)
    assert program[0] == (0x20, 0, 0, 4)  # load seccomp_data.arch
    assert program[1][3] == 0xC000003E  # AUDIT_ARCH_X86_64
    assert program[2] == (0x06, 0, 0, 0x80000000)  # otherwise kill the process
    assert program[-1] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    assert sum(insn[3] == 1234 for insn in program) == 4  # kill, tgkill, rt_(tg)sigqueueinfo


def test_landlock_carve_allows_everything_but_the_hidden_paths(tmp_path: Path) -> None:
    (tmp_path / "lib" / "pkg" / "data").mkdir(parents=True)
    (tmp_path / "lib" / "pkg" / "code.py").write_text("")
    (tmp_path / "lib" / "other").mkdir()
    allowed = landlock.carve([str(tmp_path / "lib")], [str(tmp_path / "lib" / "pkg" / "data")])
    assert sorted(allowed) == sorted([str(tmp_path / "lib" / "other"), str(tmp_path / "lib" / "pkg" / "code.py")])
    assert landlock.carve([str(tmp_path / "lib")], []) == [str(tmp_path / "lib")]


def test_landlock_carve_follows_links_to_directories_that_hold_hidden_paths(tmp_path: Path) -> None:
    """A virtual environment's ``lib64 -> lib``: a rule on the link would grant ``lib`` whole
    (Landlock rules are added through open, which follows links), hidden data included."""
    venv = tmp_path / "venv"
    (venv / "lib" / "site" / "pkg" / "data").mkdir(parents=True)
    (venv / "lib" / "site" / "other").mkdir()
    (venv / "lib64").symlink_to("lib")
    (venv / "bin").mkdir()
    hidden = [str(venv / "lib" / "site" / "pkg" / "data")]
    allowed = landlock.carve([str(venv), str(venv / "lib" / "site")], hidden)
    assert str(venv / "lib64") not in allowed and str(venv / "lib") not in allowed
    assert sorted(allowed) == [str(venv / "bin"), str(venv / "lib" / "site" / "other")]  # each once
    # a root inside an allowed one adds no rule
    assert landlock.carve([str(venv), str(venv / "bin")], []) == [str(venv)]


def test_result_helpers() -> None:
    result = SandboxResult(status=OK, tests=(Outcome(0, "passed"), Outcome(1, "failed", "AssertionError")))
    assert result.num_tests == 2 and result.num_passed == 1 and not result.all_passed
    assert json.loads(json.dumps(result.to_dict()))["tests"][1]["message"] == "AssertionError"
    assert not SandboxResult(status=OK).all_passed  # zero tests never count as all passed


def test_literal_calls_are_prefetched_only_when_certain_to_run() -> None:
    from grpo_envs.sandbox.harness import literal_calls

    source = (
        "assert f(1) == 2\nassert f(x=[1, (2, 3)]) == 0, f('message only')\nif y:\n    f(3)\n"
        "assert g(4) or f(5)\nz = f(*args)\nw = f(n)\nassert abs(f(-6)) == 6\n"
    )
    calls = literal_calls(source, {"f"})
    assert calls == [["f", ["L", 1], ["D"]], ["f", ["L"], ["D", ["x", ["L", 1, ["T", 2, 3]]]]], ["f", ["L", -6], ["D"]]]


def test_reports_survive_a_line_cut_off_by_a_kill(tmp_path: Path) -> None:
    from grpo_envs.sandbox.lane import read_reports

    path = tmp_path / "reports"
    path.write_bytes(b'["test", 0, "passed", "", null]\n["test", 1, "failed", "x", null]\n["test", 2, "pas')
    with open(path, "rb") as handle:
        assert read_reports(handle.fileno()) == [["test", 0, "passed", "", None], ["test", 1, "failed", "x", None]]
    path.write_bytes(b'["test", 0, "passed", "", null]\n["done"]\n')
    with open(path, "rb") as handle:
        assert read_reports(handle.fileno()) == [["test", 0, "passed", "", None]]


def test_timeout_keeps_the_outcomes_of_finished_tests(sandbox: Sandbox) -> None:
    program = "def f(x):\n    while x == 2:\n        pass\n    return x\n"
    tests = FunctionTests(tests=("assert f(1) == 1", "n = 2\nassert f(n) == 2", "assert f(3) == 3"))
    prefetched = FunctionTests(tests=("assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"))
    jobs = [SandboxJob(program, tests, timeout=1.0), SandboxJob(program, prefetched, timeout=1.0)]
    for result in sandbox.run_many(jobs):
        assert result.status == "timeout"
        assert [t.status for t in result.tests] == ["passed", "not_run", "not_run"]


def test_a_forked_child_gets_its_own_zygote(sandbox: Sandbox) -> None:
    job = SandboxJob(ADD, FunctionTests(tests=("assert add(2, 3) == 5",)))
    assert sandbox.run(job).all_passed  # the parent's zygote is running
    parent_zygote = sandbox._process.pid if sandbox._process else None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            result = sandbox.run(job)
            child_zygote = sandbox._process.pid if sandbox._process else None
            os.write(write_fd, json.dumps([result.all_passed, child_zygote]).encode())
            sandbox.close()
        finally:
            os._exit(0)
    os.close(write_fd)
    passed, child_zygote = json.loads(os.read(read_fd, 1000) or b"[false, null]")
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert passed and child_zygote not in (None, parent_zygote)
    assert sandbox.run(job).all_passed  # and the parent's still works
