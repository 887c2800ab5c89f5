"""The `grpo` command: train writes a complete run folder, resume continues it, eval reads it,
and faults (non-finite updates, Ctrl-C, out of memory) leave the run in a valid state."""

from __future__ import annotations

import csv
import importlib.util
import json
import pathlib

import gymnasium as gym
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO, cli
from grpo_agent.run.faults import FiniteGuardAdamW, oom_message

FAST = [
    "--sft-steps",
    "3",
    "--group-size",
    "4",
    "--n-groups",
    "2",
    "--eval-tasks",
    "4",
    "--max-new-tokens",
    "6",
    "--threads",
    "1",
    "--no-progress",
    "--save-every",
    "1",
    "--eval-every",
    "1",
]


pytestmark = pytest.mark.usefixtures("isolated_cache")


def progress_rows(run_dir):
    with open(run_dir / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_help_explains_the_main_job(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--env", "--algo", "--policy", "--device", "--seed", "--output", "--resume", "--total-timesteps"):
        assert flag in text


def test_train_writes_a_complete_run_folder_and_resume_continues_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *FAST, "--total-timesteps", "16", "--output", str(run)]) == 0
    for name in ("config.json", "progress.csv", "checkpoint.zip", "reward_curve.png", "summary.json", "summary.md"):
        assert (run / name).is_file(), name
    assert (run / "model" / "config.json").is_file() and any((run / "tb").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["timesteps"] == 16 and summary["heldout_split"] == "test"
    for key in ("heldout_accuracy_before", "heldout_accuracy_after", "wall_seconds", "peak_memory_mb"):
        assert summary[key] is not None, key
    for when in ("heldout_before", "heldout_after"):
        report = summary[when]
        assert report["n_tasks"] == 4 and report["n_samples"] == 8 and report["temperature"] == 1.0
        for name in ("greedy_accuracy", "sampled_accuracy", "pass@1", "pass@4", "pass@8"):
            e = report[name]
            assert 0.0 <= e["ci95_low"] <= e["value"] <= e["ci95_high"] <= 1.0, (when, name)
    assert summary["heldout_before"]["greedy_accuracy"]["value"] == summary["heldout_accuracy_before"]
    markdown = (run / "summary.md").read_text()
    assert "| pass@8 |" in markdown and "| greedy accuracy |" in markdown
    rows = progress_rows(run)
    assert len(rows) == 2
    # --eval-every 1: the second rollout's row holds the accuracy of the weights after update 1.
    assert rows[0]["eval/heldout_accuracy"] == "" and 0.0 <= float(rows[1]["eval/heldout_accuracy"]) <= 1.0
    assert float(rows[1]["eval/trained_completions"]) == 8

    # A second train into the same folder is refused: it would overwrite the run.
    assert cli.main(["train", *FAST, "--output", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err

    assert cli.main(["train", "--resume", str(run), "--total-timesteps", "32", "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    rows = progress_rows(run)
    assert summary["timesteps"] == 32 and len(rows) == 4  # continued, not restarted
    assert [int(float(r["time/total_timesteps"])) for r in rows] == [8, 16, 24, 32]

    capsys.readouterr()
    assert cli.main(["eval", str(run), "--n-tasks", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_tasks"] == 4 and 0.0 <= report["accuracy"] <= 1.0
    assert report["accuracy"] == report["greedy_accuracy"]["value"] and "pass@4" in report
    assert report["env_kwargs"]["split"] == "test"
    assert cli.main(["eval", str(run / "model"), "--n-tasks", "4", "--samples", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "pass@4" in report and "pass@8" not in report  # pass@k only where k <= samples
    assert cli.main(["eval", str(run / "model"), "--n-tasks", "4", "--temperature", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "pass@8" in text and "temperature 0.5" in text


def test_ppo_runs_from_the_cli(tmp_path):
    run = tmp_path / "ppo"
    assert cli.main(["train", *FAST, "--algo", "ppo", "--total-timesteps", "8", "--output", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["algo"] == "ppo"
    assert "train/value_loss" in progress_rows(run)[0]


def test_interrupt_leaves_a_loadable_checkpoint_and_resume_finishes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    original_train = GRPO.train
    calls = {"n": 0}

    def train_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second update
        return original_train(self)

    monkeypatch.setattr(GRPO, "train", train_then_interrupt)
    assert cli.main(["train", *FAST, "--total-timesteps", "24", "--output", str(run)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert GRPO.load(run / "checkpoint.zip", device="cpu").num_timesteps == 16
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left behind

    monkeypatch.setattr(GRPO, "train", original_train)
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 24


def test_out_of_memory_names_the_knobs(tmp_path, monkeypatch, capsys):
    def oom(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(GRPO, "train", oom)
    assert cli.main(["train", *FAST, "--total-timesteps", "8", "--output", str(tmp_path / "run")]) == 3
    err = capsys.readouterr().err
    for knob in ("--n-groups", "--batch-size", "--max-new-tokens", "--gradient-checkpointing"):
        assert knob in err
    message = oom_message(RuntimeError("x"), n_groups=1, group_size=2, max_new_tokens=None, gradient_checkpointing=True)
    assert "--gradient-checkpointing" not in message


def test_a_non_finite_gradient_skips_the_step_and_keeps_the_weights():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = FiniteGuardAdamW([weight], lr=0.1)
    (weight * torch.tensor([1.0, float("nan"), 1.0])).sum().backward()
    optimizer.step()
    assert torch.equal(weight.detach(), torch.ones(3)) and optimizer.skipped_steps == 1
    assert not optimizer.state  # the moments were never touched either
    weight.grad = None
    (weight * 2).sum().backward()
    optimizer.step()
    assert (weight.detach() < 1).all() and optimizer.skipped_steps == 1


def test_non_finite_loss_during_training_is_skipped_and_logged(tmp_path, monkeypatch):
    from grpo_agent.policies.tiny import TinyPolicy

    original = TinyPolicy.log_probs

    def poisoned(self, batch):
        scores = original(self, batch)
        return type(scores)(scores.log_probs * float("nan"), scores.entropy)

    monkeypatch.setattr(TinyPolicy, "log_probs", poisoned)
    run = tmp_path / "run"
    assert cli.main(["train", *FAST, "--total-timesteps", "16", "--output", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["skipped_nonfinite_updates"] == 2
    assert progress_rows(run)[-1]["train/skipped_nonfinite"] == "1"  # logged before the 2nd update
    monkeypatch.setattr(TinyPolicy, "log_probs", original)
    agent = GRPO.load(run / "checkpoint.zip", device="cpu")
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--env-kwargs", "{bad"], "--env-kwargs is not JSON"),
        (["--env-kwargs", "[1]"], "must be a JSON object"),
        (["--env", "grpo/Nope-v0"], "unknown env id 'grpo/Nope-v0'; the registered ones are grpo/Bandit-v0"),
        (["--env-kwargs", '{"levls": 1}'], "grpo/Math-v0 takes no argument levls; it takes"),
        (["--gae-lambda", "0.9"], "--gae-lambda applies to --algo ppo, not grpo"),
        (
            ["--env", "grpo/Bandit-v0"],
            "is not a text env (ContextualBanditEnv) and --policy tiny is a language model; use --policy tabular",
        ),
        (["--policy", "tabular"], "--policy tabular needs Discrete spaces and grpo/Math-v0 is a text env"),
    ],
)
def test_bad_input_exits_2_with_one_sentence_before_writing_anything(tmp_path, capsys, argv, says):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", *argv, "--output", str(run)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo train: ") and says in err and "Traceback" not in err
    assert not run.exists()


def test_version(capsys):
    from grpo_envs.version import __version__

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"grpo (grpo-gym) {__version__}"


REGISTERED = sorted(env_id for env_id in gym.registry if env_id.startswith("grpo/"))


@pytest.mark.parametrize("env_id", REGISTERED)
def test_every_registered_env_trains_from_the_cli(tmp_path, capsys, env_id):
    """What a new user types first, on the smallest budget: every id trains and writes its run
    folder (a Discrete env with the tabular policy, the others with the warm-started tiny one)."""
    space = gym.make(env_id).action_space
    policy = "tabular" if isinstance(space, gym.spaces.Discrete) else "tiny"
    run = tmp_path / "run"
    argv = ["train", "--env", env_id, "--policy", policy, "--sft-steps", "1", "--total-timesteps", "4"]
    argv += ["--group-size", "2", "--n-groups", "2", "--eval-tasks", "2", "--max-new-tokens", "4", "--threads", "1"]
    assert cli.main([*argv, "--no-progress", "--eval-every", "0", "--output", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["timesteps"] == 4, summary
    assert (run / "checkpoint.zip").is_file() and (run / "reward_curve.png").is_file()
    out = capsys.readouterr().out
    if policy == "tiny":
        assert "tiny warm start: up to 1 SFT steps" in out  # the warm start says what it is doing


EXAMPLE_CONFIG = pathlib.Path(__file__).resolve().parent.parent / "examples" / "run.yaml"


def test_the_example_config_runs_and_flags_override_it(tmp_path):
    run = tmp_path / "run"
    assert (
        cli.main(["train", "--config", str(EXAMPLE_CONFIG), *FAST, "--total-timesteps", "8", "--output", str(run)]) == 0
    )
    config = json.loads((run / "config.json").read_text())
    assert config["env_kwargs"] == '{"levels": 1}' and config["loss_type"] == "dapo"  # from the file
    assert config["algorithm_options"] == {"scale_rewards": "group", "clip_range": 0.2, "clip_range_high": 0.28}
    assert config["policy_kwargs"] == {"max_prompt_length": 256}
    assert config["group_size"] == 4 and config["sft"] == {"steps": 3}  # the flags beside it win
    assert GRPO.load(run / "checkpoint.zip", device="cpu").policy.max_prompt_length == 256


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("grup_size: 4\n", "run.yaml: grup_size is not a grpo train option"),
        ("group_size: four\n", "run.yaml: group_size: invalid int value: 'four'"),
        ("loss_type: ppo\n", "run.yaml: loss_type: invalid choice: 'ppo'"),
        ("no_progress: 3\n", "run.yaml: no_progress: must be true or false, got 3"),
        ("scale_rewards: [1]\n", "run.yaml: scale_rewards: invalid choice"),
        ("gae_lambda: 0.9\n", "--gae-lambda applies to --algo ppo, not grpo"),
        ("policy_kwargs: {tempreature: 2}\n", "--policy-kwargs: TinyPolicy takes no argument tempreature"),
        ("- group_size\n", "must be a mapping of option: value, got a list"),
        ("num_processes: 2\n", "run.yaml: num_processes: give --num-processes on the command line"),
        ("resume: runs/x\n", "run.yaml: resume: a resumed run keeps its own settings"),
        ("group_size: [\n", "is not YAML"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key_before_writing_anything(tmp_path, capsys, text, says):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--config", str(path), "--output", str(tmp_path / "run")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo train: ") and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_sampled_completions_are_logged_every_n_updates_to_csv_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["train", *FAST, "--total-timesteps", "24", "--log-completions-every", "2", "--output", str(run)]
    assert cli.main(argv) == 0
    with open(run / "completions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 8  # updates 1 and 3 of 3, 2 groups x 4 completions each
    assert sorted({int(r["timesteps"]) for r in rows}) == [8, 24]
    assert [int(r["group"]) for r in rows[:8]] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert all(r["prompt"].startswith("What is") and r["reason"] for r in rows)
    assert {float(r["reward"]) for r in rows} <= {0.0, 1.0} and {r["correct"] for r in rows} <= {"True", "False"}
    events = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0}).Reload()
    texts = events.Tensors("completions/text_summary")
    assert [t.step for t in texts] == [8, 24]
    assert (
        "| timesteps | group | prompt | completion | reward | correct | reason |"
        in texts[0].tensor_proto.string_val[0].decode()
    )


def test_report_to_none_writes_only_the_csv(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", *FAST, "--total-timesteps", "8", "--report-to", "none", "--output", str(run)]) == 0
    assert not (run / "tb").exists() and len(progress_rows(run)) == 1 and (run / "reward_curve.png").is_file()


@pytest.mark.parametrize("library", ["wandb", "trackio"])
def test_a_tracker_that_is_not_installed_is_refused_with_the_extra_to_install(tmp_path, capsys, library):
    if importlib.util.find_spec(library) is not None:
        pytest.skip(f"{library} is installed here: the missing-package refusal cannot happen")
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--report-to", library, "--output", str(tmp_path / "run")])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"grpo train: --report-to {library} needs the {library} package: pip install 'grpo-gym[{library}]'\n"
    )
    assert not (tmp_path / "run").exists()
