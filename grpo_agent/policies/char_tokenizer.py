"""A character-level tokenizer built in code: one token per printable ASCII character.

Nothing is downloaded: :func:`build_char_tokenizer` makes a Hugging Face fast tokenizer that
saves and loads with ``save_pretrained`` / ``from_pretrained`` like any other.

Example::

    >>> from grpo_agent.policies.char_tokenizer import build_char_tokenizer
    >>> tok = build_char_tokenizer()
    >>> tok.decode(tok("1+1=2")["input_ids"], skip_special_tokens=True)
    '1+1=2'
"""

from __future__ import annotations

import string

from transformers import PreTrainedTokenizerFast

#: Special tokens, in id order: padding, beginning of sequence, end of sequence, unknown.
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

#: The character vocabulary: printable ASCII plus newline and tab (string.printable without
#: the vertical tab and form feed, which no task uses).
DEFAULT_CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c\r")

#: A minimal chat template, so that the tiny tokenizer goes through the same
#: ``apply_chat_template`` path as an instruction-tuned model: each user/tool turn is its text
#: and a newline; each assistant turn is its text closed by the end-of-sequence token.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}"
    "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
)


def build_char_tokenizer(charset: str = DEFAULT_CHARSET) -> PreTrainedTokenizerFast:
    """A character-level Hugging Face fast tokenizer: one token per character of ``charset``.

    :param charset: the characters that get their own token; any other character becomes
        ``<unk>``. Ids 0-3 are ``<pad> <bos> <eos> <unk>``.
    :return: a ``PreTrainedTokenizerFast`` with left padding (what batched generation needs),
        a BOS token prepended by ``tokenizer(text)``, and :data:`TINY_CHAT_TEMPLATE`.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    chars = list(dict.fromkeys(charset))  # de-duplicate, keep order
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Every character is its own pre-token; [\s\S] also matches newlines.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A $B", special_tokens=[(BOS_TOKEN, vocab[BOS_TOKEN])]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        padding_side="left",
    )
    hf.chat_template = TINY_CHAT_TEMPLATE
    return hf
