"""Smoke tests of the benchmark scripts: each runs end to end on a tiny budget, and the
numbers it reports are consistent with what it ran. Speed itself is never asserted here
(the scripts print ratios measured in the same run; see benchmarks/README.md)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pytest
from benchmark_scripts import load


@pytest.fixture(scope="module")
def tiny_settings() -> Any:
    """vs_trl settings small enough for a smoke test: 2 updates of 2 prompts x 2 completions."""
    vs_trl = load("vs_trl")
    return vs_trl.Settings(group_size=2, n_groups=2, max_new_tokens=4, updates=2, sft_steps=2, learning_rate=1e-3)


@pytest.fixture(scope="module")
def tiny_model(tiny_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model warm-started for 2 steps, in a private cache."""
    return load("vs_trl").prepare_model(tiny_settings, cache_dir=str(tmp_path_factory.mktemp("cache")))


def _check_steps(result: dict[str, Any], settings: Any) -> None:
    steps = result["steps"]
    assert len(steps) == settings.updates
    for s in steps:
        assert 0 < s["generate_s"] < s["step_s"] and 0 <= s["reward_s"] < s["step_s"]
        assert 0.0 <= s["reward"] <= 1.0
        assert 1 <= s["completion_length"] <= settings.max_new_tokens


# -- vs_trl ---------------------------------------------------------------------------------------


def test_trl_reward_function_scores_like_the_env() -> None:
    vs_trl = load("vs_trl")
    import gymnasium as gym

    import grpo_envs  # noqa: F401

    env = gym.make("grpo/Math-v0", levels=1)
    _, info = env.reset(seed=0)
    task = env.unwrapped.task
    completions = [f"\\boxed{{{task.reference}}}", "\\boxed{not a number}", f"The answer is {task.reference}"]
    expected = []
    for text in completions:
        env.reset(options={"task_id": info["task_id"]})
        expected.append(env.step(text)[1])
    # TRL passes conversational completions as message lists.
    messages = [[{"role": "assistant", "content": c}] for c in completions]
    assert vs_trl.math_reward_function(messages, [str(task.reference)] * 3) == expected == [1.0, 0.0, 1.0]


def test_vs_trl_ours(tiny_settings: Any, tiny_model: str) -> None:
    vs_trl = load("vs_trl")
    spec = {"settings": dataclasses.asdict(tiny_settings), "model_path": tiny_model, "kind": "ours"}
    result = vs_trl.run_ours(spec)
    _check_steps(result, tiny_settings)
    summary = vs_trl.Summary.of({**result, "peak_rss_mib": 1.0}, 0, tiny_settings)
    timed = result["steps"][vs_trl.WARMUP_UPDATES :]
    assert summary.completions_per_s == pytest.approx(4 * len(timed) / sum(s["step_s"] for s in timed))
    assert "grpo_agent.GRPO" in vs_trl.table([summary], tiny_settings)


def test_vs_trl_trl(tiny_settings: Any, tiny_model: str) -> None:
    pytest.importorskip("trl", reason="TRL is the optional 'bench' dependency of vs_trl.py")
    vs_trl = load("vs_trl")
    spec = {"settings": dataclasses.asdict(tiny_settings), "model_path": tiny_model, "kind": "trl"}
    result = vs_trl.run_trl(spec)
    _check_steps(result, tiny_settings)
    theirs = vs_trl.Summary.of({**result, "peak_rss_mib": 1.0}, 0, tiny_settings)
    # Twice TRL's throughput and half its update time on every column gives 2.00x everywhere.
    ours = dataclasses.replace(
        theirs,
        kind="ours",
        **{attr: getattr(theirs, attr) * (2.0 if higher else 0.5) for _, attr, _, higher in vs_trl.COLUMNS},
    )
    ratio_row = vs_trl.table([ours, theirs], tiny_settings).splitlines()[-1]
    assert ratio_row.startswith("| ours / TRL") and ratio_row.count("2.00x") == len(vs_trl.COLUMNS)


def test_trl_config_spells_out_the_settings(tiny_settings: Any) -> None:
    pytest.importorskip("trl", reason="TRL is the optional 'bench' dependency of vs_trl.py")
    config = load("vs_trl").trl_config(tiny_settings, "/tmp/unused")
    # TRL 1.16's defaults differ from ours (dapo, beta 0, linear decay): they must not leak in.
    assert (config.loss_type, config.beta, config.lr_scheduler_type) == ("grpo", 0.04, "constant")
    assert config.num_generations == tiny_settings.group_size
    assert config.per_device_train_batch_size == tiny_settings.group_size * tiny_settings.n_groups
    assert config.max_completion_length == tiny_settings.max_new_tokens
    assert not config.gradient_checkpointing  # TRL turns it on by default; ours is off


# -- grpo_vs_ppo ----------------------------------------------------------------------------------


def test_grpo_vs_ppo_bandit_and_math(tiny_model: str, tmp_path: pathlib.Path) -> None:
    bench = load("grpo_vs_ppo")
    grpo = bench.run("bandit", "GRPO (tabular)", 0, 0.95, {"budget": 512}, isolate=False)
    assert [s for s, _ in grpo.curve] == [0, 128, 256, 384, 512]
    assert grpo.curve[-1][1] > grpo.curve[0][1] and grpo.state_mib > 0
    ppo = bench.run("bandit", "SB3 PPO (n_steps=128, batch_size=64)", 0, 0.95, {"budget": 256}, isolate=False)
    assert [s for s, _ in ppo.curve] == [0, 128, 256] and ppo.samples_to_target is None
    ours = bench.run("bandit", "our PPO (tabular, n_steps=128)", 0, 0.95, {"budget": 256}, isolate=False)
    assert [s for s, _ in ours.curve] == [0, 128, 256] and ours.curve[-1][1] > ours.curve[0][1]
    assert ours.state_mib > grpo.state_mib  # the value table and its optimizer moments

    settings = bench.MathSettings(group_size=2, n_groups=2, max_new_tokens=4, budget=8, eval_every=1, eval_tasks=4)
    extra = {"settings": dataclasses.asdict(settings), "model_path": tiny_model}
    math = [bench.run("math", agent, 0, 0.5, extra, isolate=False) for agent in bench.MATH_AGENTS]
    for r in math:
        assert [s for s, _ in r.curve] == [0, 4, 8]
        assert all(v in (0.0, 0.25, 0.5, 0.75, 1.0) for _, v in r.curve)
        assert r.train_seconds > 0
    # PPO's separate critic is a second transformer: more trainable state than GRPO's policy alone.
    assert math[1].state_mib > 1.5 * math[0].state_mib

    text = bench.headline_table([grpo, ppo], math, "GRPO (tabular)", "SB3 PPO (n_steps=128, batch_size=64)")
    assert "published" in text and "not reached" in text
    bench.plot([grpo, ppo], math, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0

    # --from-csv rebuilds the same runs from the CSV.
    load("_report").write_csv(tmp_path / "runs.csv", bench.csv_rows([grpo, ppo, *math]))
    bandit_again, math_again, _ = bench.load_csv(tmp_path / "runs.csv", 0.95, 0.05, "here")
    assert [(r.agent, r.curve, r.samples_to_target) for r in bandit_again] == [
        (r.agent, [(s, round(v, 5)) for s, v in r.curve], r.samples_to_target) for r in (grpo, ppo)
    ]
    assert [
        r.rollout_rewards == [(s, round(v, 5)) for s, v in m.rollout_rewards] for r, m in zip(math_again, math)
    ] == [True, True]
    assert math_again[0].target == pytest.approx(math[0].curve[0][1] + 0.05)


def test_verdict_names_the_winner() -> None:
    bench = load("grpo_vs_ppo")
    assert bench.verdict(1000, 2000, lower_better=True) == "GRPO 2.00x better"
    assert bench.verdict(0.5, 0.6, lower_better=False) == "PPO 1.20x better"
    assert bench.verdict(None, 2000, lower_better=True) == "-"


def test_samples_to_target_reads_the_first_crossing() -> None:
    bench = load("grpo_vs_ppo")
    run = bench.RunResult(
        "bandit",
        "a",
        0,
        [(0, 0.2), (128, 0.96), (256, 0.9), (384, 0.97)],
        1.0,
        1.0,
        1.0,
        0.95,
        [(0, 0.0), (128, 0.5), (256, 0.7), (384, 0.9)],
    )
    assert (run.samples_to_target, run.seconds_to_target, run.final) == (128, 0.5, 0.97)
    math = dataclasses.replace(run, part="math")  # noisy held-out accuracy: the mean of the last evaluations
    assert math.final == pytest.approx((0.96 + 0.9 + 0.97) / 3)


# -- reward_speed (verify_math.py + sandbox_throughput.py) ---------------------------------------


def test_reward_speed_tables(tmp_path: pathlib.Path) -> None:
    bench = load("reward_speed")
    rows = bench.math_rows(40)
    assert rows[0].n == 40 and rows[0].ours_per_s > 0
    code, layers = bench.sandbox_rows(3, workers=1)
    assert [r.ours_expected for r in code] == ["3/3", "3/3"]  # canonical pass, stubs fail
    assert [r.reference_expected for r in code] == ["3/3", "3/3"]
    assert layers
    bench.plot(rows + code, tmp_path / "r.png")
    text = bench.table(rows + code)
    assert text.count("\n") == 1 + len(rows) + len(code)


# -- rollout_engines ------------------------------------------------------------------------------


def test_rollout_engines_times_the_hf_engine_on_what_it_sampled() -> None:
    """The HF half on a smoke budget (the vLLM half starts an engine: tests/test_vllm_engine.py covers it)."""
    bench = load("rollout_engines")
    settings = dataclasses.replace(bench.QUICK, new_tokens=(4,), prompts=(2,))
    (row,) = bench.generation_rows(settings, vllm=False)
    assert row["workload"] == "generate tiny (0.9M), 2 x 8 x 4 tok"
    # 16 completions of at most 4 tokens each: tokens/s is at most 4x completions/s
    assert row["hf_completions_per_s"] > 0 and 0 < row["hf_tokens_per_s"] <= 4 * row["hf_completions_per_s"] + 0.1
    assert row["vllm_tokens_per_s"] is None and row["vllm_vs_hf"] == "-"


# -- grpo_variants (the main-job half; tests/test_variants.py runs the Bandit half) ---------------


def test_grpo_variants_main_job_runs_every_variant_from_one_warm_start(tmp_path: pathlib.Path) -> None:
    import csv
    import json

    bench = load("grpo_variants")
    names = ["GRPO", "RLOO (advantage_estimator='rloo')", "dual-clip (dual_clip=3)"]
    small = "--sft-steps 2 --sft-target-accuracy 0 --total-timesteps 8 --group-size 2 --n-groups 2 --eval-tasks 4"
    runs = tmp_path / "runs"
    args = ["--parts", "main_job", "--seeds", "0", "--variants", *names, "--runs-dir", str(runs)]
    args += ["--out-dir", str(tmp_path), "--main-job-args", small + " --max-new-tokens 4"]
    assert bench.main(args) == 0
    folders = runs / "main_job"
    # dual-clip trains GRPO's very weights at the main job's schedule: not run by default.
    assert sorted(p.name for p in folders.iterdir()) == [
        "cache-seed0",
        "grpo-seed0",
        "rloo-advantage-estimator-rloo-seed0",
    ]
    assert len(list((folders / "cache-seed0" / "tiny").iterdir())) == 1  # one warm start, shared
    config = json.loads((folders / "rloo-advantage-estimator-rloo-seed0" / "config.json").read_text())
    assert config["algorithm_options"] == {"advantage_estimator": "rloo"}  # the knob reached the run
    with open(tmp_path / "grpo_variants_main_job.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["arm"], r["completions"]) for r in rows] == [(names[0], "8"), (names[1], "8")]
    table = (tmp_path / "grpo_variants.md").read_text()
    assert "| dual-clip (dual_clip=3) | not run |  | = GRPO, bit for bit (ratio 1) |" in table

    # Running again resumes: nothing finished runs again.
    summary = folders / "grpo-seed0" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    assert bench.main(args) == 0 and summary.stat().st_mtime_ns == stamp
    # Runs of one seed that started from different weights cannot be compared: refused.
    data = json.loads(summary.read_text())
    summary.write_text(json.dumps({**data, "heldout_accuracy_before": data["heldout_accuracy_before"] + 0.5}))
    with pytest.raises(SystemExit, match="different warm starts"):
        bench.main([*args, "--render"])


def test_grpo_variants_table_pairs_each_variant_with_grpo_on_the_same_seed() -> None:
    bench = load("grpo_variants")
    rloo, passk = "RLOO (advantage_estimator='rloo')", "pass@k (advantage_estimator='grpo_passk')"
    gains = {"GRPO": [40.0, 30.0, 45.0], rloo: [44.0, 25.0, 46.0]}
    rows = [
        {"arm": arm, "seed": seed, "gain_points": gain}
        for arm, per_seed in gains.items()
        for seed, gain in enumerate(per_seed)
    ]
    bandit = [
        load("grpo_vs_ppo").RunResult("bandit", rloo, s, [(0, 0.5), (128 * (s + 1), 0.96)], 1.0, 1.0, 1.0, 0.95)
        for s in range(3)
    ]
    lines = bench.table(["GRPO", rloo, passk], bandit, rows).splitlines()
    assert lines[2] == "| GRPO | not run |  | +40.0 | +40.0, +30.0, +45.0 |  |  |"
    # RLOO: gains 44, 25, 46 (median 44); minus GRPO's of the same seed: +4, -5, +1 (median +1).
    assert lines[3] == f"| {rloo} | 256 | 128, 256, 384 | +44.0 | +44.0, +25.0, +46.0 | +1.0 | +4.0, -5.0, +1.0 |"
    assert lines[4] == f"| {passk} | not run |  | not run |  |  |  |"
