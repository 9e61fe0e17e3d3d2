"""Build the tokenizer and the discriminator from validated params (the transformers:
:mod:`seqgan.nets.transformer_factory`): where params keys become constructor arguments.

Every trainer, evaluator and report builds its models here, so a network is never constructed
with a value that did not come from params.yaml.
"""

from __future__ import annotations

from typing import Literal

from seqgan.config import Params
from seqgan.nets.attention import AttentionSpec
from seqgan.nets.discriminator import StyleGAN2Discriminator
from seqgan.nets.vqgan import VQTokenizer

Phase = Literal[1, 2]


def build_tokenizer(params: Params, phase: Phase) -> VQTokenizer:
    """Phase 1: conv-only decoder. Phase 2: the same plus block-regional + dilated attention."""
    arch = params.tokenizer.architecture
    quant = params.tokenizer.quantizer
    attention = None
    if phase == 2:
        spec = params.tokenizer.phase2.attention
        attention = AttentionSpec(block_size=spec.block_size, dilation=spec.dilation, heads=spec.heads)
    return VQTokenizer(
        base_channels=arch.base_channels,
        channel_mult=arch.channel_mult,
        num_res_blocks=arch.num_res_blocks,
        extra_res_blocks=arch.extra_res_blocks,
        code_dim=arch.code_dim,
        codebook_size=arch.codebook_size,
        num_groups=arch.num_groups,
        attention=attention,
        beta=quant.beta,
        entropy_weight=quant.entropy_weight,
        entropy_temperature=quant.entropy_temperature,
    )


def build_discriminator(params: Params) -> StyleGAN2Discriminator:
    """tokenizer.gan.disc_channels channels at full resolution, doubling per 2x down-sampling (max 512)."""
    resolution = params.data.resolution
    return StyleGAN2Discriminator(
        resolution=resolution,
        channel_base=params.tokenizer.gan.disc_channels * resolution,
        channel_max=512,
    )
