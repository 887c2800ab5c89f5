"""Smoke tests of the extensions' benchmark scripts: each runs end to end on a tiny budget and
writes what it reports (speed and results are never asserted here; docs/extensions.md has them)."""

from __future__ import annotations

import csv

import pytest
import yaml
from benchmark_scripts import load

pytestmark = pytest.mark.usefixtures("isolated_cache")


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_reward_weights_benchmark(tmp_path):
    argv = ["--seeds", "0", "--budget", "256", "--arms", "fixed 1:1", "adaptive 0.8/0.2", "--out-dir", str(tmp_path)]
    assert load("reward_weights").main(argv) == 0
    written = rows(tmp_path / "reward_weights.csv")
    assert [r["arm"] for r in written] == ["fixed 1:1", "adaptive 0.8/0.2"]
    assert float(written[0]["final_weight_correct"]) == 1.0 != float(written[1]["final_weight_correct"])
    assert "| fixed 1:1 |" in (tmp_path / "reward_weights.md").read_text()


def test_step_advantages_benchmark(tmp_path):
    argv = ["--envs", "corridor", "--seeds", "0", "--budget", "64", "--n-groups", "2", "--window", "1"]
    assert load("step_advantages").main([*argv, "--out-dir", str(tmp_path)]) == 0
    written = rows(tmp_path / "step_advantages.csv")
    assert [float(r["step_advantage_abs"]) == 0 for r in written] == [True, False]  # only GiGPO has step terms
    assert all(int(r["episodes"]) >= 64 for r in written)


def test_tune_bandit_benchmark(tmp_path):
    argv = ["--trials", "2", "--budget", "256", "--held-out-seeds", "1", "--out-dir", str(tmp_path)]
    assert load("tune_bandit").main(argv) == 0
    assert set(yaml.safe_load((tmp_path / "tune_bandit.yaml").read_text())) == {
        "learning_rate", "beta", "group_size", "clip_range",
    }  # fmt: skip
    assert [r["setting"] for r in rows(tmp_path / "tune_bandit.csv")] == ["documented", "tuned"] * 3


def test_prompt_samplers_benchmark(tmp_path):
    argv = [
        "--seeds", "0", "--samplers", "uniform", "difficulty", "--budget", "16", "--group-size", "2",
        "--n-groups", "4", "--eval-every", "1", "--eval-tasks", "4", "--sft-steps", "2", "--sft-target", "0",
        "--num-tasks", "40", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    assert load("prompt_samplers").main(argv) == 0
    written = rows(tmp_path / "prompt_samplers.csv")
    assert [r["sampler"] for r in written] == ["uniform", "difficulty"]
    assert all(int(r["completions"]) == 16 and len(r["curve"].split()) == 3 for r in written)
