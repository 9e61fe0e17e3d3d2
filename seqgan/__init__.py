"""SeQ-GAN reproduction: VQ tokenizers with a semantic-enhanced perceptual loss, AR/NAR transformers.

``seqgan.load_tokenizer(path)`` loads a trained tokenizer from its checkpoint alone
(:mod:`seqgan.models`); imported on first use, so ``import seqgan`` stays free of torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_tokenizer"]


def __getattr__(name: str) -> Any:
    if name == "load_tokenizer":
        from seqgan.models import load_tokenizer

        return load_tokenizer
    raise AttributeError(f"module 'seqgan' has no attribute {name!r}")
