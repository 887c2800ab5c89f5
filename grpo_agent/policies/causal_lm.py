"""CausalLMPolicy: a Hugging Face causal language model as a policy over text.

A completion is a sequence of tokens; each token is one action. The policy

- renders an observation (a prompt, or a conversation) with the tokenizer's chat template
  when it has one;
- samples ``n`` completions per prompt in one batch with the KV cache (temperature, top-p,
  ``max_new_tokens``), recording the log-probability of every sampled token under the
  *tempered* distribution ``softmax(logits / temperature)``, the same quantity the learner
  recomputes, so that the importance ratio is exactly 1 before the first update;
- re-scores token sequences with one forward pass (:meth:`CausalLMPolicy.log_probs`),
  with an exact mask: prompt, padding, everything after the first EOS, and (in multi-turn
  episodes) the environment's tokens never count;
- keeps the reference policy of the KL penalty as a frozen copy of the initial weights, or,
  with LoRA, as the same network with its adapters disabled (no second copy in memory).

A :class:`~grpo_agent.policies.base.CompletionBatch` from this policy holds the completion
tokens only (``token_ids``, right-padded, ``(B, L)``), so the GRPO loss sees exactly the
tokens it trains; the context tokens travel in ``extras["context_ids"]`` and are left-padded
again for every forward pass, with position ids that skip the padding, so a row's
log-probs do not depend on how the batch around it was padded.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from grpo_agent.common.utils import get_device
from grpo_agent.policies import sharding, shared_prefix
from grpo_agent.policies.base import BasePolicy, CompletionBatch, TokenLogProbs
from grpo_agent.policies.chat_rendering import ChatRenderer, Observation
from grpo_agent.policies.decoding import decode, sample_top_p
from grpo_agent.policies.hf_loading import (
    add_lora,
    enable_activation_checkpointing,
    eos_token_ids,
    load_causal_lm,
    load_tokenizer,
    no_progress_bars,
)
from grpo_agent.policies.lm_ops import (
    disable_dropout,
    left_pad,
    position_ids_from_mask,
    resolve_dtype,
    selective_log_softmax,
    token_entropy,
)

#: Name of the file, inside a saved policy folder, that records the sampling settings.
POLICY_CONFIG_FILE = "policy_config.json"

#: Length bound of the text spaces when a policy is built without an env.
DEFAULT_TEXT_LENGTH = 16_384


class CausalLMPolicy(BasePolicy):
    """A Hugging Face ``AutoModelForCausalLM`` + tokenizer as a policy over completions.

    A :class:`~grpo_agent.policies.base.CompletionBatch` from this policy holds, per row, the
    completion's tokens (``token_ids``, right-padded), a mask of the policy's own tokens, the
    sampler's per-token log-probs, and in ``extras`` the context token ids
    (``"context_ids"``, a list per row) and the number of real completion tokens
    (``"length"``, policy and environment tokens together). The env action is the decoded
    completion text.

    :param observation_space: the env's observation space (text).
    :param action_space: the env's action space (text).
    :param model: a local folder or hub name for ``AutoModelForCausalLM.from_pretrained``, or
        an already built model. (``"tiny"`` is :class:`~grpo_agent.policies.tiny.TinyPolicy`.)
    :param tokenizer: a tokenizer, a folder/name to load one from, or None (load it from ``model``).
    :param device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    :param dtype: ``"auto"`` (bf16 on a GPU that supports it, else fp32), ``"float32"``, ``"bfloat16"``.
    :param temperature: sampling temperature; log-probs are always those of ``softmax(logits / temperature)``.
    :param top_p: nucleus sampling threshold (1.0 = off). The recorded log-probs are those of
        the tempered distribution before truncation, the quantity the learner recomputes (TRL's convention).
    :param max_new_tokens: longest completion, in tokens, per policy turn.
    :param max_prompt_length: longest prompt, in tokens, after rendering; a longer one keeps
        its end (where the question is), as TRL's ``max_prompt_length`` did (None: no limit).
        It bounds the memory and time of sampling and scoring when an env's prompts outgrow
        what the model was built for (the tiny model's 512 positions).
    :param gradient_checkpointing: recompute activations in the backward pass (less memory,
        ~30% more time): the knob to turn when long sequences run out of GPU memory.
    :param lora: None, or a dict of ``peft.LoraConfig`` arguments (e.g. ``{"r": 16}``) or a
        ``LoraConfig``: only the adapters train, and the reference policy is the base with its
        adapters disabled (no second copy in memory). Needs ``pip install 'grpo-gym[lora]'``.
    :param reference: ``"copy"`` (a frozen copy of the weights, taken the first time the
        reference is needed, i.e. before the first update) or ``"none"`` (``beta`` must be 0).
    :param trust_remote_code: forwarded to ``from_pretrained`` for models with custom code.
    :param share_prefix: run each distinct context through the network once and share its KV
        cache among the completions that continue it (a GRPO group's G rows), in sampling and
        in scoring (:mod:`~grpo_agent.policies.shared_prefix`). Same log-probs up to float
        rounding, much less compute when prompts are long; off only to compare.

    Example::

        >>> from grpo_agent.policies.causal_lm import CausalLMPolicy
        >>> from grpo_agent.policies.tiny import build_char_tokenizer, build_tiny_model
        >>> tok = build_char_tokenizer()
        >>> policy = CausalLMPolicy.from_pretrained(build_tiny_model(tok), tokenizer=tok, max_new_tokens=4)
        >>> batch = policy.sample(["What is 1 + 1?"], n=2)
        >>> batch.token_ids.shape[0], len(batch.actions)
        (2, 2)
    """

    #: The transformers model, or its peft wrapper: typed Any because both have methods
    #: (generation, checkpointing, adapters) that torch's Module does not declare.
    model: Any
    #: The frozen reference network (a copy of the model, built on first use); None until then.
    _reference: Any

    def __init__(
        self,
        observation_space: spaces.Space | None,
        action_space: spaces.Space | None,
        model: str | os.PathLike[str] | torch.nn.Module,
        tokenizer: Any = None,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        max_prompt_length: int | None = None,
        gradient_checkpointing: bool = False,
        lora: Any = None,
        reference: str = "copy",
        trust_remote_code: bool = False,
        share_prefix: bool = True,
    ) -> None:
        from grpo_envs.spaces import UnicodeText

        super().__init__(
            observation_space if observation_space is not None else UnicodeText(DEFAULT_TEXT_LENGTH),
            action_space if action_space is not None else UnicodeText(DEFAULT_TEXT_LENGTH),
        )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}); use deterministic=True for greedy decoding")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if max_prompt_length is not None and max_prompt_length < 1:
            raise ValueError(f"max_prompt_length must be >= 1 or None, got {max_prompt_length}")
        if reference not in ("copy", "none"):
            raise ValueError(f"reference must be 'copy' or 'none', got {reference!r}")
        device_ = get_device(device)
        self.torch_dtype = resolve_dtype(dtype, device_)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.max_completion_length = self.max_new_tokens
        self.max_prompt_length = None if max_prompt_length is None else int(max_prompt_length)
        self.reference_mode = reference
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.trust_remote_code = bool(trust_remote_code)
        self.share_prefix = bool(share_prefix)
        self._unshareable: set[int] = set()  # ids of networks whose cache cannot be gathered
        # (chat template, whether it renders tools=): probed once per template, see render
        self._lora_arg = lora

        network, self.name_or_path = load_causal_lm(model, self.torch_dtype, self.trust_remote_code)
        self.tokenizer = load_tokenizer(tokenizer, self.name_or_path, self.trust_remote_code)
        self.renderer = ChatRenderer(self.tokenizer)
        self.eos_token_ids = eos_token_ids(network, self.tokenizer)
        disable_dropout(network)
        self.lora_config: Any = None
        if lora is not None:
            network, self.lora_config = add_lora(network, lora)
        self.model = network.to(device_)
        if self.gradient_checkpointing:
            enable_activation_checkpointing(self.model)
        # The frozen reference is deliberately not a submodule: it must not be trained, nor
        # moved by the optimiser's view of parameters(); it is saved through get_extra_state.
        object.__setattr__(self, "_reference", None)
        self.model.eval()

    def shard(self, plan: sharding.ShardingPlan) -> None:
        """Shard the model, and the reference copy, over the processes (FSDP2, see
        :mod:`~grpo_agent.policies.sharding`). The reference is taken now, from the weights every
        process holds (the initial ones), and sharded or offloaded as ``plan`` says."""
        if self.sharding_plan is not None:
            raise RuntimeError("this policy is sharded already")
        if self.reference_mode == "copy" and self.lora_config is None and self._reference is None:
            with self.reference_model():
                pass  # builds the frozen copy while the weights are still whole
        sharding.shard_network(self.model, plan, offload=plan.offload_params)
        if self._reference is not None:
            sharding.shard_network(self._reference, plan, offload=plan.offload_reference)
        self.sharding_plan = plan

    @classmethod
    def from_pretrained(
        cls, model: str | os.PathLike[str] | torch.nn.Module, env: Any = None, **kwargs: Any
    ) -> CausalLMPolicy:
        """Build the policy for ``env`` (its spaces; text spaces when None) from a model
        folder, hub name or model object; ``kwargs`` are the constructor's keyword arguments.
        A folder written by :meth:`save_pretrained` restores its sampling settings unless
        ``kwargs`` override them."""
        if isinstance(model, (str, os.PathLike)) and (Path(model) / POLICY_CONFIG_FILE).is_file():
            saved = json.loads((Path(model) / POLICY_CONFIG_FILE).read_text())
            kwargs = {
                **{k: saved[k] for k in ("temperature", "top_p", "max_new_tokens", "max_prompt_length") if k in saved},
                **kwargs,
            }
        obs = getattr(env, "observation_space", None)
        act = getattr(env, "action_space", None)
        return cls(obs, act, model, **kwargs)

    # -- rendering --------------------------------------------------------------------------------

    def render(self, observation: Observation) -> str:
        """The text the model conditions on (see :class:`~grpo_agent.policies.chat_rendering.ChatRenderer`)."""
        return self.renderer.render(observation)

    def encode_context(self, observation: Observation) -> list[int]:
        """Token ids of one rendered observation (its last ``max_prompt_length``)."""
        ids = self.renderer.encode_context(observation)
        if self.max_prompt_length is not None and len(ids) > self.max_prompt_length:
            return ids[-self.max_prompt_length :]
        return ids

    def encode_env_turn(self, text: str, role: str = "tool") -> list[int]:
        """Tokens that insert an environment message after a finished policy turn and open the
        policy's next turn (context, never in the loss)."""
        return self.renderer.encode_env_turn(text, role)

    # -- sampling ---------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, observations: Sequence[Any], n: int = 1, deterministic: bool = False) -> CompletionBatch:
        """``n`` completions per observation, sampled in one batch with the KV cache.

        :param observations: prompts (str) or conversations (lists of ``{"role", "content"}``).
        :param n: completions per observation; rows ``i*n .. i*n+n-1`` answer observation ``i``.
        :param deterministic: greedy decoding (recorded log-probs are still those of the
            tempered policy, so they stay comparable).
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        encoded = [self.encode_context(o) for o in observations]
        contexts = [encoded[i] for i in range(len(observations)) for _ in range(n)]
        rows = [observations[i] for i in range(len(observations)) for _ in range(n)]
        tokens, logp, own, done = self.generate_tokens(contexts, deterministic=deterministic)
        return self.completion_batch(rows, contexts, tokens, own, logp * own, own.sum(-1).long(), ~done)

    def generate_tokens(
        self, contexts: Sequence[Sequence[int]], *, deterministic: bool = False, max_new_tokens: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sample one policy turn after each token context.

        :return: ``(tokens, log_probs, own, done)``: ``(B, L)`` sampled ids (padding after EOS),
            their tempered log-probs, a ``(B, L)`` bool mask of the tokens up to and including
            the first EOS, and ``(B,)`` whether the row emitted an EOS. All on the CPU.
        """
        limit = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        pad = int(self.tokenizer.pad_token_id)
        groups = self._context_groups(contexts, self.model)
        ids, attn = left_pad(groups[0] if groups else contexts, pad)
        device = self.device
        ids, attn = ids.to(device), attn.to(device)
        index = groups[1].to(device) if groups else None
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._whole(self.model):
                decoded = self._decode(ids, attn, limit, deterministic, index)
                if decoded is None:  # this model's cache cannot be shared: one row per completion
                    self._unshareable.add(id(self.model))
                    ids, attn = left_pad(contexts, pad)
                    decoded = self._decode(ids.to(device), attn.to(device), limit, deterministic, None)
                assert decoded is not None, "row-by-row decoding never needs a shared cache"
                tokens, logp, done = decoded
        finally:
            self.model.train(was_training)
        eos = torch.as_tensor(self.eos_token_ids, device=tokens.device)
        is_eos = torch.isin(tokens, eos)
        after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # strictly after the first EOS
        own = ~after_eos
        tokens = tokens.masked_fill(after_eos, pad)
        return tokens.cpu(), logp.cpu(), own.cpu(), done.cpu()

    def _whole(self, network: torch.nn.Module) -> Any:
        """A context in which a sharded network is whole (see :func:`~grpo_agent.policies.sharding.gathered`)."""
        if self.sharding_plan is None:
            return contextlib.nullcontext()
        return sharding.gathered(network, self.sharding_plan)

    def _decode(
        self, ids: Tensor, attn: Tensor, limit: int, deterministic: bool, index: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        return decode(
            self.model,
            ids,
            attn,
            limit=limit,
            temperature=self.temperature,
            sample=self._sample_top_p,
            eos_ids=self.eos_token_ids,
            pad_id=int(self.tokenizer.pad_token_id),
            deterministic=deterministic,
            index=index,
        )

    def _sample_top_p(self, logits: Tensor) -> Tensor:
        return sample_top_p(logits, self.top_p, self.generator)

    def completion_text(self, token_ids: Sequence[int]) -> str:
        """A completion's text, without the tokens that frame it (BOS, EOS, padding, unknown) but
        with every other special token: tool-call markers such as Mistral's ``[TOOL_CALLS]`` or
        Llama's ``<|python_tag|>`` are special tokens, and the env must see them."""
        tok = self.tokenizer
        framing = {*self.eos_token_ids, tok.pad_token_id, tok.bos_token_id, tok.unk_token_id}
        return str(tok.decode([t for t in token_ids if t not in framing], skip_special_tokens=False))

    def completion_batch(
        self,
        observations: list[Any],
        contexts: list[list[int]],
        tokens: Tensor,
        own: Tensor,
        logp: Tensor,
        length: Tensor,
        truncated: Tensor,
    ) -> CompletionBatch:
        """The batch of sampled completions, whichever engine sampled them.

        :param observations: one per row.
        :param contexts: each row's context token ids.
        :param tokens: ``(B, L)`` sampled ids, right-padded.
        :param own: ``(B, L)`` the policy's own tokens (up to and including the first EOS).
        :param logp: ``(B, L)`` the sampler's per-token log-probs (0 outside ``own``).
        :param length: ``(B,)`` real tokens per row.
        :param truncated: ``(B,)`` rows that hit ``max_new_tokens`` without an EOS.
        """
        texts = [self.completion_text(row[m].tolist()) for row, m in zip(tokens, own)]
        device = self.device
        return CompletionBatch(
            observations=list(observations),
            actions=texts,
            token_ids=tokens.to(device),
            mask=own.to(device),
            log_probs=logp.float().to(device),
            truncated=truncated.to(device),
            extras={"context_ids": [list(c) for c in contexts], "length": length.to(device)},
        )

    @torch.no_grad()
    def continue_turn(
        self, batch: CompletionBatch, env_messages: Sequence[str | None], deterministic: bool = False
    ) -> CompletionBatch:
        """Multi-turn rollouts: after each row whose env answered (a message, not None), append
        the env's message as context tokens (masked out of the loss) and sample the policy's
        next turn; rows with None are kept as they are. ``actions`` become the new turn's text.

        :param batch: the completions so far (from :meth:`sample` or an earlier call).
        :param env_messages: one entry per row: the env's reply (e.g. a tool's output) or None.
        """
        if len(env_messages) != len(batch):
            raise ValueError(f"need one env message (or None) per row: {len(batch)} rows, {len(env_messages)} messages")
        active = [i for i, m in enumerate(env_messages) if m is not None]
        lengths = batch.extras["length"].tolist()
        prefixes = [batch.token_ids[i, : lengths[i]].tolist() for i in range(len(batch))]
        own_prefix = [batch.mask[i, : lengths[i]].tolist() for i in range(len(batch))]
        logp_prefix = [batch.log_probs[i, : lengths[i]].tolist() for i in range(len(batch))]
        truncated = batch.truncated.clone().cpu()
        actions = list(batch.actions)
        if active:
            env_tokens = {i: self.encode_env_turn(str(env_messages[i])) for i in active}
            contexts = [batch.extras["context_ids"][i] + prefixes[i] + env_tokens[i] for i in active]
            tokens, logp, own, done = self.generate_tokens(contexts, deterministic=deterministic)
            for j, i in enumerate(active):
                k = int(own[j].sum())
                prefixes[i] = prefixes[i] + env_tokens[i] + tokens[j, :k].tolist()
                own_prefix[i] = own_prefix[i] + [False] * len(env_tokens[i]) + [True] * k
                logp_prefix[i] = logp_prefix[i] + [0.0] * len(env_tokens[i]) + logp[j, :k].tolist()
                truncated[i] = not bool(done[j])
                actions[i] = self.completion_text(tokens[j, :k].tolist())
        width = max(len(p) for p in prefixes)
        pad = int(self.tokenizer.pad_token_id)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        logps = torch.zeros((len(batch), width), dtype=torch.float32)
        for i, (p, m, lp) in enumerate(zip(prefixes, own_prefix, logp_prefix)):
            ids[i, : len(p)] = torch.as_tensor(p, dtype=torch.long)
            mask[i, : len(m)] = torch.as_tensor(m, dtype=torch.bool)
            logps[i, : len(lp)] = torch.as_tensor(lp, dtype=torch.float32)
        device = self.device
        return replace(
            batch,
            actions=actions,
            token_ids=ids.to(device),
            mask=mask.to(device),
            log_probs=logps.to(device),
            truncated=truncated.to(device),
            extras={**batch.extras, "length": torch.as_tensor([len(p) for p in prefixes], device=device)},
        )

    # -- scoring ----------------------------------------------------------------------------------

    def _inputs(self, batch: CompletionBatch) -> tuple[Tensor, Tensor, int]:
        """Full sequences ``[left-padded context | completion]``, their attention mask, and the
        context width. Padding never changes a row's scores: positions skip it and attention
        ignores it."""
        pad = int(self.tokenizer.pad_token_id)
        ctx_ids, ctx_attn = left_pad(batch.extras["context_ids"], pad)
        comp, comp_attn = self._completion_inputs(batch)
        device = self.device
        ids = torch.cat([ctx_ids, comp], dim=1).to(device)
        attn = torch.cat([ctx_attn, comp_attn], dim=1).to(device)
        return ids, attn, ctx_ids.shape[1]

    def _context_groups(
        self, contexts: Sequence[Sequence[int]], net: torch.nn.Module
    ) -> tuple[list[list[int]], Tensor] | None:
        """The distinct contexts and each row's index into them, when ``net`` should share them
        (``share_prefix`` on, its cache not known to be ungatherable, some context repeated)."""
        if not self.share_prefix or id(net) in self._unshareable:
            return None
        unique, index = shared_prefix.group_rows(contexts)
        return (unique, index) if shared_prefix.worth_sharing(len(contexts), len(unique)) else None

    @staticmethod
    def _completion_inputs(batch: CompletionBatch) -> tuple[Tensor, Tensor]:
        """The right-padded completion ids and their attention mask (policy and env tokens), on the CPU."""
        comp = batch.token_ids.cpu()
        length = batch.extras["length"].cpu()
        return comp, (torch.arange(comp.shape[1]).unsqueeze(0) < length.unsqueeze(1)).long()

    def forward_completions(
        self, batch: CompletionBatch, model: torch.nn.Module | None = None, *, output_hidden_states: bool = False
    ) -> tuple[Tensor, Any]:
        """One forward pass over ``batch``; returns the completion positions' tempered logits
        ``(B, L, V)`` (position ``t`` predicts completion token ``t``) and the model output."""
        net = self.model if model is None else model
        ids, attn, _ = self._inputs(batch)
        length = batch.token_ids.shape[1]
        out = net(
            input_ids=ids,
            attention_mask=attn,
            position_ids=position_ids_from_mask(attn),
            logits_to_keep=length + 1,
            output_hidden_states=output_hidden_states,
            use_cache=False,
        )
        logits = out.logits[:, :-1, :] / self.temperature
        return logits, out

    def completion_logits(self, batch: CompletionBatch, model: torch.nn.Module | None = None) -> Tensor:
        """The tempered logits ``(B, L, V)`` of :meth:`forward_completions`, computing each
        distinct context once when rows share it (``share_prefix``)."""
        net = self.model if model is None else model
        # transformers turns the cache off under gradient checkpointing in training
        groups = (
            None
            if self.gradient_checkpointing and net.training
            else self._context_groups(batch.extras["context_ids"], net)
        )
        if groups is not None:
            unique, index = groups
            device = self.device
            ctx_ids, ctx_attn = left_pad(unique, int(self.tokenizer.pad_token_id))
            comp, comp_attn = self._completion_inputs(batch)
            logits = shared_prefix.shared_prefix_logits(
                net, ctx_ids.to(device), ctx_attn.to(device), index.to(device), comp.to(device), comp_attn.to(device)
            )
            if logits is not None:
                return logits / self.temperature
            self._unshareable.add(id(net))
        logits, _ = self.forward_completions(batch, net)
        return logits

    def log_probs(self, batch: CompletionBatch, *, entropy_grad: bool = False) -> TokenLogProbs:
        """Per-token log-probs (differentiable) and entropies of the completions, ``(B, L)``, at
        the sampling temperature; the entropies are detached unless ``entropy_grad``."""
        return self.log_probs_from_logits(self.completion_logits(batch), batch, entropy_grad=entropy_grad)

    def log_probs_from_logits(
        self, logits: Tensor, batch: CompletionBatch, *, entropy_grad: bool = False
    ) -> TokenLogProbs:
        """Per-token log-probs and entropies from the tempered logits of :meth:`forward_completions`."""
        logp = selective_log_softmax(logits, batch.token_ids.to(logits.device))
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            entropy = token_entropy(logits)
        return TokenLogProbs(logp, entropy)

    @torch.no_grad()
    def reference_log_probs(self, batch: CompletionBatch) -> Tensor:
        """``(B, L)`` per-token log-probs under the frozen reference policy."""
        with self.reference_model() as ref:
            logits = self.completion_logits(batch, ref)
        return selective_log_softmax(logits, batch.token_ids.to(logits.device))

    @contextmanager
    def reference_model(self) -> Iterator[torch.nn.Module]:
        """The frozen reference network: the LoRA base with adapters disabled, or a frozen copy
        of the weights as they were the first time it was asked for (before any update)."""
        if self.lora_config is not None:
            with self.model.disable_adapter():
                yield self.model
            return
        if self.reference_mode == "none":
            raise RuntimeError(
                "this policy was built with reference='none': use beta=0, or build it with reference='copy'"
            )
        if self._reference is None:
            ref = copy.deepcopy(self.model)
            for p in ref.parameters():
                p.requires_grad_(False)
            object.__setattr__(self, "_reference", ref)
        ref = self._reference
        if self.sharding_plan is None:  # a sharded (maybe offloaded) copy stays where its plan put it
            ref.to(self.device)
        was_training = ref.training
        ref.eval()
        try:
            yield ref
        finally:
            ref.train(was_training)

    # -- persistence ------------------------------------------------------------------------------

    def get_extra_state(self) -> Any:
        """Saved with ``state_dict()``: the reference weights, so that a resumed run keeps the
        same KL anchor instead of re-anchoring on its resumed weights."""
        if self._reference is None or self.lora_config is not None:
            return {}
        if self.sharding_plan is not None:  # every process gathers, rank 0 receives the full tensors
            return {"reference": sharding.full_state_dict(self._reference)}
        return {"reference": {k: v.detach().cpu() for k, v in self._reference.state_dict().items()}}

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        if isinstance(state, dict) and state.get("reference") and self.lora_config is None:
            if self.sharding_plan is not None and self._reference is not None:
                sharding.load_full_state_dict(self._reference, state["reference"])
                return
            ref = copy.deepcopy(self.model)
            ref.load_state_dict(state["reference"])
            for p in ref.parameters():
                p.requires_grad_(False)
            object.__setattr__(self, "_reference", ref.eval())

    def get_constructor_parameters(self) -> dict[str, Any]:
        """Arguments that rebuild this policy's network before its ``state_dict`` is loaded."""
        return {
            **super().get_constructor_parameters(),
            "model": self.name_or_path,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "max_prompt_length": self.max_prompt_length,
            "gradient_checkpointing": self.gradient_checkpointing,
            "lora": self._lora_arg if not hasattr(self._lora_arg, "to_dict") else self._lora_arg.to_dict(),
            "reference": self.reference_mode,
            "share_prefix": self.share_prefix,
            "dtype": str(self.torch_dtype).replace("torch.", ""),
        }

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write the policy as a plain Hugging Face model folder (weights + tokenizer; LoRA
        adapters merged in), loadable by ``CausalLMPolicy.from_pretrained(path)`` or by any
        ``transformers`` code. Written to a temporary folder and renamed into place.

        A sharded policy is gathered first: every process calls this, and rank 0 writes."""
        path = Path(path)
        state = None
        if self.sharding_plan is not None:
            if self.lora_config is not None:
                raise NotImplementedError("save_pretrained of a sharded LoRA policy: save the agent instead")
            state = sharding.full_state_dict(self.model)
            if torch.distributed.get_rank() != 0:
                return
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model = copy.deepcopy(self.model).merge_and_unload() if self.lora_config is not None else self.model
        with no_progress_bars():  # "Writing model shards" bars would clutter a run's output
            model.save_pretrained(tmp, state_dict=state)
        self.tokenizer.save_pretrained(tmp)
        (tmp / POLICY_CONFIG_FILE).write_text(
            json.dumps(
                {
                    "temperature": self.temperature,
                    "top_p": self.top_p,
                    "max_new_tokens": self.max_new_tokens,
                    "max_prompt_length": self.max_prompt_length,
                },
                indent=2,
            )
        )
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return (
            f"{type(self).__name__}({self.name_or_path or type(self.model).__name__}, {n / 1e6:.2f}M params, "
            f"device={self.device}, dtype={self.torch_dtype}, temperature={self.temperature}, "
            f"top_p={self.top_p}, max_new_tokens={self.max_new_tokens})"
        )
