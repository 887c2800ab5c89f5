"""One GRPO (or PPO) update on fixed groups, run in one process or in each process of a gloo group.

Imported by tests/test_distributed.py and by the processes it spawns (``torch.multiprocessing``
passes the test's ``sys.path`` on, so this module is importable there).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import torch
import torch.distributed as dist

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO, PPO
from grpo_agent.common.deepspeed_support import ZeroPlan
from grpo_agent.policies import sharding
from grpo_agent.policies.base import CompletionBatch
from grpo_agent.policies.causal_lm import CausalLMPolicy
from grpo_agent.policies.tiny import TinyPolicy

#: Fixed groups on Bandit-v0: (state, the G actions, their rewards).
GROUPS: list[tuple[int, list[int], list[float]]] = [
    (0, [0, 1, 2, 0], [1.0, 0.2, 0.0, 1.0]),
    (3, [4, 4, 1, 5], [1.0, 1.0, 0.3, 0.5]),
    (5, [2, 0, 4, 4], [0.1, 0.5, 1.0, 1.0]),
    (6, [1, 3, 3, 0], [1.0, 0.3, 0.3, 0.4]),
]


def grpo_update(groups: list[tuple[int, list[int], list[float]]], config: dict[str, Any]) -> torch.Tensor:
    """The tabular policy's logits after ``config``'s update on ``groups`` (this process's share)."""
    torch.set_num_threads(1)
    model = GRPO(
        "tabular", gym.make("grpo/Bandit-v0"), group_size=4, seed=0, device="cpu",
        policy_kwargs={"dtype": torch.float64}, **config,
    )  # fmt: skip
    policy = model.policy
    with torch.no_grad():  # a non-uniform start, the same everywhere (rank 0's is broadcast anyway)
        policy.logits.copy_(torch.linspace(-1, 1, policy.logits.numel()).reshape(policy.logits.shape))
    observations = [state for state, actions, _ in groups for _ in actions]
    token_ids = torch.tensor([[a] for _, actions, _ in groups for a in actions])
    batch = CompletionBatch(
        observations=observations,
        actions=token_ids[:, 0].tolist(),
        token_ids=token_ids,
        mask=torch.ones_like(token_ids, dtype=torch.bool),
        log_probs=torch.zeros(token_ids.shape, dtype=policy.logits.dtype),
        truncated=torch.zeros(len(token_ids), dtype=torch.bool),
    )
    with torch.no_grad():
        batch.log_probs = policy.log_probs(batch).log_probs.detach()
        ref = policy.reference_log_probs(batch)
    rewards = [r for _, _, rs in groups for r in rs]
    model.rollout_buffer.add([s for s, _, _ in groups], [s for s, _, _ in groups], batch, rewards, ref)
    model.rollout_buffer.compute_advantages(model.scale_rewards, model.std_eps, estimator=model.advantage_estimator)
    model.train()
    return policy.logits.detach().clone()


def run_rank(rank: int, world: int, port: int, config: dict[str, Any], out: str) -> None:
    """One process of the group: its contiguous share of GROUPS, then rank 0 saves the logits
    and every rank's logits (which must be equal)."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        share = len(GROUPS) // world
        logits = grpo_update(GROUPS[rank * share : (rank + 1) * share], config)
        everyone = [torch.zeros_like(logits) for _ in range(world)]
        dist.all_gather(everyone, logits)
        if rank == 0:
            torch.save({"logits": logits, "everyone": everyone}, out)
        dist.barrier()  # leave together (see grpo_agent.run.train_command.cmd_train)
    finally:
        dist.destroy_process_group()


def run_cli(rank: int, world: int, port: int, argv: list[str], cache: str) -> None:
    """One process of ``grpo train`` started the way torchrun starts it (its environment)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    os.environ["GRPO_GYM_CACHE"] = cache
    from grpo_agent import cli

    code = cli.main(argv)
    if code:
        raise SystemExit(code)


def run_cli_commands(rank: int, world: int, ports: list[int], argvs: list[list[str]], cache: str) -> None:
    """Several ``grpo train`` commands one after the other in the same process (each starts and
    ends its own process group, on a port of its own): one start-up of the processes for them all."""
    for port, argv in zip(ports, argvs):
        run_cli(rank, world, port, argv, cache)


#: Fixed groups for the tiny language model: (prompt, the G completions, their rewards).
TEXT_GROUPS: list[tuple[str, list[str], list[float]]] = [
    ("What is 1 + 1?", ["2", "11", "2.", "3"], [1.0, 0.0, 0.5, 0.0]),
    ("What is 2 + 3?", ["5", "5", "6", "23"], [1.0, 1.0, 0.0, 0.2]),
    ("What is 7 - 4?", ["3", "4", "-3", "3"], [1.0, 0.0, 0.1, 1.0]),
    ("What is 3 * 3?", ["9", "6", "33", "9"], [1.0, 0.3, 0.0, 1.0]),
]


def lm_agent(config: dict[str, Any], fsdp: sharding.ShardingPlan | None, deepspeed: ZeroPlan | None = None) -> GRPO:
    """GRPO on the tiny causal LM in float64, built from the same seed in every process."""
    torch.set_num_threads(1)
    env = gym.make("grpo/Math-v0", levels=1)
    policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, dtype=torch.float64, max_new_tokens=6)
    return GRPO(policy, env, group_size=4, seed=0, device="cpu", fsdp=fsdp, deepspeed=deepspeed, **config)


def text_batch(policy: Any, groups: list[tuple[str, list[str], list[float]]]) -> CompletionBatch:
    """The fixed completions of ``groups`` as the policy's batch (log-probs still 0)."""
    assert isinstance(policy, CausalLMPolicy)
    eos = policy.eos_token_ids[0]
    encode = policy.tokenizer.encode
    rows = [(prompt, [*encode(text, add_special_tokens=False), eos]) for prompt, texts, _ in groups for text in texts]
    width = max(len(ids) for _, ids in rows)
    token_ids = torch.full((len(rows), width), int(policy.tokenizer.pad_token_id))
    for i, (_, ids) in enumerate(rows):
        token_ids[i, : len(ids)] = torch.tensor(ids)
    lengths = torch.tensor([len(ids) for _, ids in rows])
    return CompletionBatch(
        observations=[prompt for prompt, _ in rows],
        actions=[text for _, texts, _ in groups for text in texts],
        token_ids=token_ids,
        mask=torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1),
        log_probs=torch.zeros(token_ids.shape, dtype=torch.float64),
        truncated=torch.zeros(len(rows), dtype=torch.bool),
        extras={"context_ids": [policy.encode_context(prompt) for prompt, _ in rows], "length": lengths},
    )


def lm_update(model: GRPO, groups: list[tuple[str, list[str], list[float]]]) -> None:
    """One update of ``model`` on fixed completions of ``groups`` (this process's share)."""
    policy = model.policy
    batch = text_batch(policy, groups)
    with torch.no_grad():
        batch.log_probs = policy.log_probs(batch).log_probs.detach() * batch.mask
        ref = policy.reference_log_probs(batch)
    rewards = [r for _, _, rs in groups for r in rs]
    prompts = [prompt for prompt, _, _ in groups]
    model.rollout_buffer.add(prompts, prompts, batch, rewards, ref)
    model.rollout_buffer.compute_advantages(model.scale_rewards, model.std_eps, estimator=model.advantage_estimator)
    model.train()


def lm_weights(model: GRPO) -> dict[str, torch.Tensor]:
    """The trained network's full weights (gathered from the shards when sharded; {} off rank 0)."""
    network = model.policy.model  # type: ignore[attr-defined]
    if model.policy.sharding_plan is not None:
        return sharding.full_state_dict(network)
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def run_fsdp_rank(rank: int, world: int, port: int, config: dict[str, Any], out: str) -> None:
    """One process of an FSDP group: its share of TEXT_GROUPS, then the full weights (rank 0
    saves them with the agent's checkpoint). Each process also samples a different number of
    tokens first, which must not stall the group (the decoding loop runs on gathered weights)."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = lm_agent(config, sharding.ShardingPlan())
        assert sharding.is_sharded(model.policy.model)  # type: ignore[attr-defined]
        contexts = [model.policy.encode_context("What is 1 + 1?")] * (1 + rank)  # type: ignore[attr-defined]
        model.policy.generate_tokens(contexts, max_new_tokens=2 + 3 * rank)  # type: ignore[attr-defined]
        share = len(TEXT_GROUPS) // world
        lm_update(model, TEXT_GROUPS[rank * share : (rank + 1) * share])
        weights = lm_weights(model)
        model.save(out + ".agent.zip")  # every process gathers, rank 0 writes
        if rank == 0:
            torch.save(weights, out)
        dist.barrier()  # leave together (see grpo_agent.run.train_command.cmd_train)
    finally:
        dist.destroy_process_group()


def ppo_agent(critic: str, fsdp: sharding.ShardingPlan | None) -> PPO:
    """PPO on the tiny causal LM in float64 (clipped value loss, whitened advantages, the KL
    penalty and gradient clipping all on), built from the same seed in every process."""
    torch.set_num_threads(1)
    env = gym.make("grpo/Math-v0", levels=1)
    policy = TinyPolicy(env.observation_space, env.action_space, sft_steps=0, dtype=torch.float64, max_new_tokens=6)
    return PPO(
        policy, env, learning_rate=1e-2, n_steps=4, n_epochs=2, beta=0.05, critic=critic, seed=0, device="cpu",
        fsdp=fsdp,
    )  # fmt: skip


def ppo_update(model: PPO, groups: list[tuple[str, list[str], list[float]]]) -> None:
    """One PPO update of ``model`` on the fixed completions of ``groups`` (this process's share),
    each completion one PPO sample: old log-probs, reference and values as a rollout computes them."""
    batch = text_batch(model.policy, groups)
    with torch.no_grad():
        # float64, unlike the float32 a rollout records: the rewards and advantages take this
        # dtype, and the whitening's mean over every row must not round differently when the
        # rows are split over two processes
        batch.log_probs = model.policy.log_probs(batch).log_probs.detach().double() * batch.mask
        ref = model.policy.reference_log_probs(batch)
        values = model.critic(model.policy, batch)
    model._add_rollout(batch, [r for _, _, rs in groups for r in rs], ref, values)
    model.train()


def ppo_weights(model: PPO) -> dict[str, torch.Tensor]:
    """The policy's and the critic's full weights, ``policy.``/``critic.`` prefixed ({} off rank 0)."""
    networks = {"policy": model.policy.model, "critic": model.critic}  # type: ignore[attr-defined]
    if model.policy.sharding_plan is not None:
        states = {name: sharding.full_state_dict(net) for name, net in networks.items()}
    else:
        states = {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in networks.items()}
    return {f"{name}.{k}": v for name, state in states.items() for k, v in state.items()}


def run_ppo_fsdp_rank(rank: int, world: int, port: int, critics: list[str], out: str) -> None:
    """One process of an FSDP group training PPO, once per critic layout, on its share of
    TEXT_GROUPS; rank 0 saves the full weights of policy and critic (``out.<layout>``), and every
    process takes part in the agent's checkpoint (``out.<layout>.agent.zip``)."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for critic in critics:
            model = ppo_agent(critic, sharding.ShardingPlan())
            assert sharding.is_sharded(model.policy.model) and sharding.is_sharded(model.critic)  # type: ignore[attr-defined]
            share = len(TEXT_GROUPS) // world
            ppo_update(model, TEXT_GROUPS[rank * share : (rank + 1) * share])
            weights = ppo_weights(model)
            model.save(f"{out}.{critic}.agent.zip")  # every process gathers, rank 0 writes
            if rank == 0:
                torch.save(weights, f"{out}.{critic}")
        dist.barrier()  # leave together (see grpo_agent.run.train_command.cmd_train)
    finally:
        dist.destroy_process_group()


def run_ppo_fsdp_processes(
    rank: int, world: int, ports: list[int], critics: list[str], out: str, argvs: list[list[str]], cache: str
) -> None:
    """The PPO checks of tests/test_distributed.py in one start-up of the processes: the update on
    fixed completions (:func:`run_ppo_fsdp_rank`), then ``grpo train`` commands under the variables
    that ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` sets."""
    run_ppo_fsdp_rank(rank, world, ports[0], critics, out)
    os.environ.update(ACCELERATE_USE_FSDP="true", FSDP_VERSION="2")
    run_cli_commands(rank, world, ports[1:], argvs, cache)


def run_deepspeed_rank(rank: int, world: int, port: int, config: dict[str, Any], out: str) -> None:
    """One process of a DeepSpeed ZeRO-2 group: its share of TEXT_GROUPS, then the weights (rank
    0 saves them, and the agent's checkpoint, which every process helps gather); then that
    checkpoint is loaded under DeepSpeed and saved again (``.again.zip``)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = lm_agent(config, None, ZeroPlan(stage=2))
        assert model._deepspeed_engine is not None
        share = len(TEXT_GROUPS) // world
        lm_update(model, TEXT_GROUPS[rank * share : (rank + 1) * share])
        weights = lm_weights(model)
        model.save(out + ".agent.zip")  # every process gathers the optimiser's partitions, rank 0 writes
        if rank == 0:
            torch.save(weights, out)
        dist.barrier()
        # A resume: the checkpoint loads back into DeepSpeed's partitions, and saves the same again.
        again = GRPO.load(out + ".agent.zip", env=model.env, device="cpu", deepspeed=ZeroPlan(stage=2))
        again.save(out + ".again.zip")
        dist.barrier()  # leave together (see grpo_agent.run.train_command.cmd_train)
    finally:
        dist.destroy_process_group()
