"""Build the generative transformers from validated params: where params keys become constructor
arguments (kept apart from the tokenizer's builders, so transformer training needs no tokenizer code)."""

from __future__ import annotations

from typing import Literal

from seqgan.config import Params
from seqgan.nets.transformer import GenerativeTransformer, TransformerConfig

Objective = Literal["ar", "nar"]


def tokens_per_image(params: Params) -> int:
    side = params.data.resolution // params.tokenizer.architecture.compression
    return side * side


def build_transformer(params: Params, size: Literal["base", "large"], objective: Objective) -> GenerativeTransformer:
    """AR (causal) or NAR (bidirectional) transformer over the tokenizer's codes."""
    config = TransformerConfig.from_size(
        getattr(params.transformer.sizes, size),
        vocab_size=params.tokenizer.architecture.codebook_size,
        seq_len=tokens_per_image(params),
        num_classes=params.transformer.num_classes if params.transformer.conditional else 0,
        causal=objective == "ar",
    )
    return GenerativeTransformer(config)
