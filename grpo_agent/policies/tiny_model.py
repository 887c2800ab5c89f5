"""The built-in tiny transformer: a ~0.9M-parameter Llama-architecture causal LM built from a config."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase


@dataclass(frozen=True)
class TinyConfig:
    """Shape of the built-in tiny transformer (a Llama architecture: RoPE, RMSNorm, SwiGLU).

    The defaults give ~0.87M parameters: small enough that sampling, scoring and an update
    on 64 completions take well under a second on 2 CPU cores.

    :param hidden_size: width of the residual stream.
    :param num_hidden_layers: number of transformer blocks.
    :param num_attention_heads: attention heads per block.
    :param intermediate_size: width of the SwiGLU feed-forward layer.
    :param max_position_embeddings: longest sequence (prompt + completion) in tokens.
    """

    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    max_position_embeddings: int = 512


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase, config: TinyConfig = TinyConfig(), seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised tiny causal LM sized to ``tokenizer``'s vocabulary.

    :param tokenizer: gives the vocabulary size and the pad/bos/eos ids.
    :param config: the model's shape.
    :param seed: seed of the weight initialisation (the global torch RNG is left untouched).
    """
    hf_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(hf_config)
    # Generation defaults that match how the policy samples (no hidden top-k).
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model
