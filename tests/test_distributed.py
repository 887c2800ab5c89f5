"""Data-parallel GRPO and PPO over a gloo process group equal one process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from distributed_worker import (
    GROUPS,
    TEXT_GROUPS,
    grpo_update,
    lm_agent,
    lm_update,
    lm_weights,
    ppo_agent,
    ppo_update,
    ppo_weights,
    run_cli,
    run_deepspeed_rank,
    run_fsdp_rank,
    run_ppo_fsdp_processes,
    run_rank,
)

from grpo_agent.common import distributed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CONFIGS: dict[str, dict[str, Any]] = {
    # batch statistics (the reward std over every process's groups) and dapo's token count
    "batch_std_dapo": {
        "scale_rewards": "batch",
        "loss_type": "dapo",
        "beta": 0.04,
        "learning_rate": 0.5,
        "n_epochs": 3,
    },
    "group_std_grpo": {"loss_type": "grpo", "beta": 0.0, "learning_rate": 0.5, "n_epochs": 2},
    "reinforce_pp": {"advantage_estimator": "reinforce_plus_plus_baseline", "learning_rate": 0.5, "n_epochs": 2},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_take_the_step_of_one_with_the_whole_batch(name: str, tmp_path: Path) -> None:
    config = CONFIGS[name]
    single = grpo_update(GROUPS, config)
    out = tmp_path / "logits.pt"
    mp.spawn(run_rank, args=(2, _free_port(), config, str(out)), nprocs=2, join=True)
    result = torch.load(out)
    assert torch.equal(result["everyone"][0], result["everyone"][1])  # the processes stay in step
    assert torch.allclose(result["logits"], single, atol=1e-6), (result["logits"] - single).abs().max()


#: The GRPO update the sharded checks (FSDP, DeepSpeed) take in two processes and in one.
SHARDED_CONFIG = {"scale_rewards": "batch", "loss_type": "dapo", "beta": 0.04, "learning_rate": 1e-2, "n_epochs": 2}


def _two_processes_against_one(tmp_path: Path, worker: Any) -> tuple[Any, dict, dict, float]:
    """One process's update on all of TEXT_GROUPS, and two ``worker`` processes' on half each
    (rank 0 saves the weights to ``tmp_path / "weights.pt"``, the agent beside them):
    ``(the one agent, its weights before, the two processes' weights, the largest difference)``."""
    single = lm_agent(SHARDED_CONFIG, None)
    before = lm_weights(single)
    lm_update(single, TEXT_GROUPS)
    expected = lm_weights(single)
    out = tmp_path / "weights.pt"
    mp.spawn(worker, args=(2, _free_port(), SHARDED_CONFIG, str(out)), nprocs=2, join=True)
    theirs = torch.load(out)
    assert theirs.keys() == expected.keys()
    moved = max(float((expected[k] - before[k]).abs().max()) for k in expected)
    assert moved > 1e-3  # the update did something, so equality means something
    return single, before, theirs, max(float((theirs[k] - expected[k]).abs().max()) for k in expected)


def test_two_fsdp_processes_take_the_step_of_one_with_the_whole_batch(tmp_path: Path) -> None:
    """FSDP2 over two gloo processes (the model and its reference sharded, the gradients
    reduce-scattered) ends with the weights of one unsharded process that had the whole batch;
    the checkpoint rank 0 wrote loads into one process, optimiser state included."""
    from grpo_agent import GRPO

    single, before, sharded, worst = _two_processes_against_one(tmp_path, run_fsdp_rank)
    assert worst < 1e-6, worst
    loaded = GRPO.load(tmp_path / "weights.pt.agent.zip", device="cpu")
    assert all(torch.equal(v, sharded[k]) for k, v in loaded.policy.model.state_dict().items())  # type: ignore[attr-defined]
    with loaded.policy.reference_model() as reference:  # type: ignore[attr-defined]
        assert all(torch.equal(v, before[k]) for k, v in reference.state_dict().items())  # the KL anchor kept
    assert len(loaded.optimizer.state) == len(single.optimizer.state)


#: The critic layouts the PPO checks run with.
PPO_CRITICS = ["separate", "shared"]


@pytest.fixture(scope="module")
def ppo_fsdp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with what two FSDP processes running PPO left: for each critic layout, rank 0's
    full weights after one update on half of the fixed completions each (``weights.pt.<layout>``)
    and the agent's checkpoint (``.agent.zip``); then the run folder ``run`` of a two-process
    ``grpo train --algo ppo`` of 16 completions resumed to 32. All in one start-up of the two
    processes (importing torch and transformers is most of the time these checks take)."""
    from test_cli import FAST

    folder = tmp_path_factory.mktemp("ppo_fsdp")
    run = folder / "run"
    first = ["train", *FAST, "--algo", "ppo", "--total-timesteps", "16", "--output", str(run)]
    resume = ["train", "--resume", str(run), "--total-timesteps", "32", "--threads", "1", "--no-progress"]
    ports = [_free_port() for _ in range(3)]
    args = (2, ports, PPO_CRITICS, str(folder / "weights.pt"), [first, resume], str(folder / "cache"))
    mp.spawn(run_ppo_fsdp_processes, args=args, nprocs=2, join=True)
    return folder


@pytest.mark.parametrize("critic", PPO_CRITICS)
def test_two_fsdp_processes_take_the_ppo_step_of_one_with_the_whole_batch(critic: str, ppo_fsdp: Path) -> None:
    """PPO under FSDP2 (policy, reference and critic sharded): two processes, each with half of
    fixed completions (unequal token counts, so the token means and the whitening must count
    every process's tokens), end with the policy and critic of one unsharded process that had
    them all; rank 0's checkpoint loads into one process, critic and optimiser state included."""
    from grpo_agent import PPO

    single = ppo_agent(critic, None)
    before = ppo_weights(single)
    ppo_update(single, TEXT_GROUPS)
    expected = ppo_weights(single)
    sharded = torch.load(ppo_fsdp / f"weights.pt.{critic}")
    assert sharded.keys() == expected.keys()
    for part in ("policy.", "critic.head."):  # the update moved both, so equality below means something
        assert max(float((expected[k] - before[k]).abs().max()) for k in expected if k.startswith(part)) > 1e-3
    worst = max(float((sharded[k] - expected[k]).abs().max()) for k in expected)
    assert worst < 1e-6, worst
    loaded = PPO.load(ppo_fsdp / f"weights.pt.{critic}.agent.zip", device="cpu")
    assert all(torch.equal(v, sharded[k]) for k, v in ppo_weights(loaded).items())
    assert len(loaded.optimizer.state) == len(single.optimizer.state)
    assert [len(g["params"]) for g in loaded.optimizer.param_groups] == [
        len(g["params"]) for g in single.optimizer.param_groups
    ]


def test_two_deepspeed_zero2_processes_take_the_step_of_one_with_the_whole_batch(tmp_path: Path) -> None:
    """DeepSpeed ZeRO-2 over two gloo processes (gradients reduce-scattered, AdamW's moments and
    master weights partitioned, the engine clipping and stepping) ends with the weights of one
    process that had the whole batch, and its checkpoint, gathered from the partitions, holds
    that process's AdamW state, loads without DeepSpeed, and loads back into the partitions."""
    from grpo_agent import GRPO
    from grpo_agent.common.deepspeed_support import select_accelerator

    select_accelerator()
    pytest.importorskip("deepspeed", reason="DeepSpeed is the optional 'deepspeed' extra (in the 'test' extra)")
    single, _, zero, worst = _two_processes_against_one(tmp_path, run_deepspeed_rank)
    # DeepSpeed keeps its master weights, gradient partitions and AdamW moments in fp32 whatever
    # the weights' dtype, and AdamW divides each gradient by its own size (+ eps 1e-8), which
    # magnifies the fp32 rounding of the near-zero ones: 3.9e-6 here, where float64 FSDP gives
    # 3.3e-14 (with eps=1e-3 the difference falls to 1.1e-7).
    assert worst < 1e-5, worst
    loaded = GRPO.load(tmp_path / "weights.pt.agent.zip", device="cpu")  # no DeepSpeed in this process
    assert all(torch.equal(v, zero[k]) for k, v in loaded.policy.model.state_dict().items())  # type: ignore[attr-defined]
    mine = [p for group in single.optimizer.param_groups for p in group["params"]]
    theirs = [p for group in loaded.optimizer.param_groups for p in group["params"]]
    assert len(mine) == len(theirs) == len(loaded.optimizer.state)
    for a, b in zip(mine, theirs):
        state_a, state_b = single.optimizer.state[a], loaded.optimizer.state[b]
        assert float(state_a["step"]) == float(state_b["step"]) == 2.0  # two epochs of one minibatch
        assert torch.allclose(state_a["exp_avg"], state_b["exp_avg"].double(), rtol=0, atol=1e-6)
        assert torch.allclose(state_a["exp_avg_sq"], state_b["exp_avg_sq"].double(), rtol=0, atol=1e-9)
    saved, resaved = (
        GRPO.load(tmp_path / name, device="cpu").optimizer.state_dict()
        for name in ("weights.pt.agent.zip", "weights.pt.again.zip")
    )
    for key, state in saved["state"].items():
        assert all(torch.equal(v, resaved["state"][key][k]) for k, v in state.items())


def test_the_update_is_not_trivially_equal() -> None:
    """The comparison above can fail: half the batch gives another update."""
    config = CONFIGS["batch_std_dapo"]
    assert not torch.allclose(grpo_update(GROUPS[:2], config), grpo_update(GROUPS, config), atol=1e-6)


def test_outside_a_process_group_everything_is_the_identity() -> None:
    rows = torch.arange(6.0).reshape(3, 2)
    gathered, mine = distributed.gather_rows(rows)
    assert gathered is rows and mine == slice(0, 3)
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main_process()
    assert distributed.mean_over_processes({"a": 2.0}) == {"a": 2.0}
    assert distributed.sum_over_processes(3.0) == 3.0


@pytest.mark.parametrize("mode", ["data_parallel", "fsdp", "deepspeed"])
def test_grpo_train_in_two_processes_writes_one_run_folder_and_resumes(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from test_cli import FAST

    if mode == "fsdp":  # what `accelerate launch --config_file configs/accelerate/fsdp.yaml` tells every process
        monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
        monkeypatch.setenv("FSDP_VERSION", "2")
    if mode == "deepspeed":  # and what configs/accelerate/deepspeed_zero2.yaml tells them
        from grpo_agent.common.deepspeed_support import select_accelerator

        select_accelerator()
        pytest.importorskip("deepspeed", reason="DeepSpeed is the optional 'deepspeed' extra (in the 'test' extra)")
        monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none")
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "none")
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO3_INIT", "false")

    run = tmp_path / "run"
    argv = ["train", *FAST, "--total-timesteps", "16", "--output", str(run)]
    mp.spawn(run_cli, args=(2, _free_port(), argv, str(tmp_path / "cache")), nprocs=2, join=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["timesteps"] == 16  # both processes' completions
    assert summary["processes"] == 2 and summary["fsdp"] is (mode == "fsdp")
    assert summary["deepspeed"] == (2 if mode == "deepspeed" else None)
    assert (run / "checkpoint.zip").exists() and (run / "config.json").exists()
    rows = (run / "progress.csv").read_text().strip().splitlines()
    # 16 completions are one update of 2 processes x 2 groups x 4: a header and one row, rank 0's
    assert len(rows) == 1 + 1
    argv = ["train", "--resume", str(run), "--total-timesteps", "32", "--threads", "1", "--no-progress"]
    mp.spawn(run_cli, args=(2, _free_port(), argv, str(tmp_path / "cache")), nprocs=2, join=True)
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 32


def test_ppo_train_under_fsdp_in_two_processes_writes_one_run_folder_and_resumes(ppo_fsdp: Path) -> None:
    """`grpo train --algo ppo` in two processes under configs/accelerate/fsdp.yaml's variables
    (policy and critic sharded) writes one run folder, and --resume continues it (policy, critic
    and optimiser state loaded from the gathered checkpoint)."""
    import json

    run = ppo_fsdp / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["algo"] == "ppo"
    assert summary["processes"] == 2 and summary["fsdp"] is True
    assert summary["timesteps"] == 32  # 16 completions (2 processes x n_steps 8) per update, twice
    rows = (run / "progress.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # a header and one row per update, rank 0's
    assert (run / "checkpoint.zip").exists() and (run / "config.json").exists()


def test_fsdp_is_refused_for_a_tabular_policy_and_planned_for_ppo(monkeypatch: pytest.MonkeyPatch) -> None:
    from grpo_agent.run import train_command

    monkeypatch.setattr(train_command.distributed, "is_distributed", lambda: True)  # as under torchrun
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    assert train_command._sharding_plans({"algo": "ppo", "policy": "tiny"})["fsdp"] is not None
    with pytest.raises(ValueError, match="not --policy tabular"):
        train_command._sharding_plans({"algo": "grpo", "policy": "tabular"})


def test_num_processes_reruns_the_same_command_under_torchrun() -> None:
    import sys

    from grpo_agent.run.train_command import torchrun_command

    argv = ["train", "--num-processes", "2", "--seed", "3", "--num-processes=2", "--output", "runs/x"]
    command = torchrun_command(2, argv)
    assert command[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    assert command[7:] == ["grpo_agent.cli", "train", "--seed", "3", "--output", "runs/x"]


def test_num_processes_under_a_launcher_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from grpo_agent import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--num-processes", "2", "--output", str(tmp_path / "run")])
    assert exit_.value.code == 2 and "leave it out" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("variables", "refusal"),
    [
        ({"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "stage 3 is not supported"),
        ({"ACCELERATE_DEEPSPEED_ZERO_STAGE": "0"}, "ddp.yaml"),
        ({"ACCELERATE_GRADIENT_CLIPPING": "0.5"}, "max_grad_norm"),
        ({"ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "4"}, "--batch-size"),
        ({"ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE": "cpu"}, "fsdp_offload.yaml"),
    ],
)
def test_deepspeed_configs_grpo_gym_does_not_run_are_refused_with_the_reason(
    variables: dict[str, str], refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grpo_agent.common.deepspeed_support import ZeroPlan, select_accelerator

    select_accelerator()
    pytest.importorskip("deepspeed", reason="DeepSpeed is the optional 'deepspeed' extra (in the 'test' extra)")
    base = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}
    for name, value in {**base, **variables}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=refusal):
        ZeroPlan.from_accelerate_environment()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    assert ZeroPlan.from_accelerate_environment() is None


@pytest.mark.parametrize(("name", "offload"), [("deepspeed_zero2", False), ("deepspeed_zero2_offload", True)])
def test_the_deepspeed_config_files_ask_for_zero2(name: str, offload: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/accelerate/deepspeed_zero2*.yaml, as accelerate launch passes them on."""
    from grpo_agent.common.deepspeed_support import ZeroPlan, select_accelerator

    select_accelerator()
    pytest.importorskip("deepspeed", reason="DeepSpeed is the optional 'deepspeed' extra (in the 'test' extra)")
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((Path(__file__).parents[1] / f"configs/accelerate/{name}.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED"
    ds = config["deepspeed_config"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", str(ds["zero_stage"]))
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", ds["offload_optimizer_device"])
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", ds["offload_param_device"])
    assert ZeroPlan.from_accelerate_environment() == ZeroPlan(stage=2, offload_optimizer=offload)


def test_grpo_train_refuses_deepspeed_for_ppo(monkeypatch: pytest.MonkeyPatch) -> None:
    """PPO adds its critic to the optimiser after set-up, which DeepSpeed's wrapped optimiser
    would not see: ``grpo train --algo ppo`` under a DeepSpeed config exits with status 2."""
    from grpo_agent.run.train_command import _sharding_plans

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)  # as in each process accelerate starts
    with pytest.raises(ValueError, match="DeepSpeed runs GRPO only, not --algo ppo"):
        _sharding_plans({"algo": "ppo"})


def test_a_single_process_run_prints_nothing_from_deepspeed() -> None:
    """accelerate imports DeepSpeed, where installed, inside transformers' save_pretrained, even in
    one process; on a machine without CUDA DeepSpeed then logged a WARNING at the end of every
    `grpo train`. Importing grpo_agent names its CPU accelerator first."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is the optional 'deepspeed' extra (in the 'test' extra)")
    if torch.cuda.is_available():
        pytest.skip("with CUDA DeepSpeed finds its accelerator and says nothing")
    code = (
        "import grpo_agent, torch\n"
        "from accelerate.utils import extract_model_from_parallel\n"
        "extract_model_from_parallel(torch.nn.Linear(1, 1))  # what save_pretrained calls\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Setting accelerator" not in out.stdout + out.stderr
