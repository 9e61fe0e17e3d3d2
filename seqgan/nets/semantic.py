"""The embedded default's semantic network: a small VGG-style classifier with VGG16's five taps.

The paper's semantic-enhanced perceptual loss uses ImageNet VGG16 features (relu1_2 ... relu5_3)
and classifier logits. The embedded default runs offline, so it trains this stand-in on its own
labelled synthetic images and uses it the same way (and as the FID feature extractor).

Layout (chosen to mirror VGG16 so each tap has the same role):
- five stages of two 3x3 conv - BatchNorm - ReLU units (VGG16 has three convs in stages 3-5;
  two per stage halves the cost and reaches the same accuracy on the embedded set). The tap names
  keep VGG16's (relu3_3 etc.): "the last ReLU of stage i", whatever its index inside the stage;
- each tap is the output of the stage's last ReLU, before pooling; 2x max-pooling before some
  stages. VGG16's geometry relative to the paper's tokenizer is kept, not its absolute sizes: at
  256 px VGG16 pools four times, so relu5_3 is 16x16, the token grid, and the shallower taps are
  finer. Here the number of poolings is the tokenizer's (``pools`` = log2 of its down-sampling,
  :func:`semantic_pools`), spread over the stages by ``POOL_BEFORE``: the embedded default's 32 px
  input and 8x8 token grid give taps at 32, 32, 16, 16, 8 px, so relu5_3 is the token grid.
  (Four poolings at 32 px made relu5_3 2x2, coarser than the tokens: L_sem could not say where
  on the grid the semantics were wrong.);
- global average pooling of the last tap and one linear layer give the logits.

Why BatchNorm (``NORMALIZATION``): without it this 10-layer ReLU stack trained only on the edge of
stability -- at lr 2e-3 one machine's run sat at chance for 1,800 of 3,000 steps and ended at 0.887
accuracy while others reached 0.99, and 4e-3 diverged. With BatchNorm the learning-rate range that
trains is wide (the sweep is in the README). Batch statistics are used only while the net trains;
as a frozen backbone (perceptual loss, FID features, classifier metrics) it is always in eval mode,
so one image's features never depend on its batch. :func:`fold_batchnorm` then merges each
BatchNorm into the convolution before it (the same function up to float rounding, one memory pass
less per layer).

Input normalisation uses per-channel mean / std buffers that the trainer sets from the training
split (the analogue of VGG's ImageNet statistics); they are saved with the weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from seqgan.artefacts.checkpoints import load_weights
from seqgan.config import Params
from seqgan.nets.backbone import TAP_NAMES

CONVS_PER_STAGE: tuple[int, ...] = (2, 2, 2, 2, 2)
# Where the 2x poolings go, first to last: with p poolings, stages POOL_BEFORE[:p] start with one.
# One pooling: before stage 5 only; two: before 5 and 3 (taps 1x, 1x, 2x, 2x, 4x down); four: VGG16.
POOL_BEFORE: tuple[int, ...] = (4, 2, 3, 1)
VGG16_POOLS = 4
# Recorded in the weights' sidecar; a checkpoint of another layout is refused on load.
NORMALIZATION = "batchnorm"
WEIGHTS_KIND = "semantic_net"  # the sidecar kind of a trained network (seqgan.train.classifier)


def _conv_unit(in_ch: int, out_ch: int) -> list[nn.Module]:
    """conv3x3 (no bias: BatchNorm's shift replaces it) - BatchNorm - ReLU."""
    return [
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class SemanticNet(nn.Module):
    """Five-stage VGG-style classifier implementing :class:`~seqgan.nets.backbone.FeatureBackbone`.

    Args:
        widths: output channels of the five stages.
        num_classes: size of the logit vector.
        pools: number of 2x max-poolings (0-4; VGG16 has 4), placed by ``POOL_BEFORE``.
    """

    def __init__(self, widths: Sequence[int], num_classes: int, pools: int = VGG16_POOLS):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) != len(CONVS_PER_STAGE) or min(widths) <= 0:
            raise ValueError(f"widths must be {len(CONVS_PER_STAGE)} positive ints, got {widths}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not 0 <= int(pools) <= len(POOL_BEFORE):
            raise ValueError(f"pools must be in [0, {len(POOL_BEFORE)}], got {pools}")
        self.pools = int(pools)
        self.pool_before = frozenset(POOL_BEFORE[: self.pools])
        self.widths = tuple(widths)
        self.num_classes = int(num_classes)
        self.tap_names: tuple[str, ...] = TAP_NAMES
        # Set by the trainer from the training split; identity until then.
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_std", torch.ones(1, 3, 1, 1))

        stages = []
        in_ch = 3
        for width, n_convs in zip(widths, CONVS_PER_STAGE, strict=True):
            layers: list[nn.Module] = []
            for _ in range(n_convs):
                layers += _conv_unit(in_ch, width)
                in_ch = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(widths[-1], self.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs, unit BatchNorm, a small head (logits start near 0)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @torch.no_grad()
    def set_input_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Per-channel statistics of training images in the [-1, 1] input range."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Images (B, 3, H, W) in [-1, 1] -> ([relu1_2, ..., relu5_3], logits (B, num_classes))."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        h = (images - self.input_mean) / self.input_std
        taps: list[Tensor] = []
        for i, stage in enumerate(self.stages):
            if i in self.pool_before:
                h = self.pool(h)
            h = stage(h)
            taps.append(h)
        logits = self.head(h.mean(dim=(2, 3)))
        return taps, logits

    def forward(self, images: Tensor) -> Tensor:
        """Logits only (classification)."""
        return self.features(images)[1]


@torch.no_grad()
def fold_batchnorm(net: SemanticNet) -> SemanticNet:
    """Merge every eval-mode BatchNorm into the convolution before it, in place; returns ``net``.

    conv(x) * g / sqrt(var + eps) + (b - mean * g / sqrt(var + eps)) is one biased convolution, so
    the frozen network computes the same function (up to float rounding) with one layer fewer per
    unit. Only for a frozen net: the folded one has no batch statistics left to train.
    """
    for stage in net.stages:
        layers = list(stage)
        folded: list[nn.Module] = []
        i = 0
        while i < len(layers):
            conv = layers[i]
            if isinstance(conv, nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d):
                bn = layers[i + 1]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
                merged = nn.Conv2d(
                    conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True
                )
                merged = merged.to(conv.weight.device, conv.weight.dtype)
                merged.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                merged.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
                merged.train(conv.training).requires_grad_(conv.weight.requires_grad)
                folded.append(merged)
                i += 2
            else:
                folded.append(conv)
                i += 1
        stage._modules.clear()
        for index, module in enumerate(folded):
            stage.add_module(str(index), module)
    return net


def semantic_pools(params: Params) -> int:
    """Poolings that put relu5_3 on the token grid: log2 of the tokenizer's down-sampling."""
    compression = params.tokenizer.architecture.compression
    pools = compression.bit_length() - 1
    if 1 << pools != compression or pools > len(POOL_BEFORE):
        raise ValueError(
            f"the tokenizer down-samples {compression}x; the semantic network's relu5_3 can sit on its "
            f"token grid only for a power of two up to {1 << len(POOL_BEFORE)}"
        )
    return pools


def semantic_weights(params: Params, path: str | Path | None) -> Path | None:
    """The embedded semantic network's weights file (None for the pretrained VGG16 backbone)."""
    if params.semantic.backbone != "embedded":
        return None
    if not path:
        raise SystemExit("error: --semantic is required when semantic.backbone = embedded")
    return Path(path)


def load_semantic_net(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> SemanticNet:
    """Rebuild a trained :class:`SemanticNet` from its weights + sidecar: eval mode, frozen, its
    BatchNorms folded into the convolutions (:func:`seqgan.nets.semantic.fold_batchnorm`)."""
    state, sidecar = load_weights(path, device="cpu")
    if sidecar.get("kind") != WEIGHTS_KIND:
        raise ValueError(f"{path}: sidecar kind is {sidecar.get('kind')!r}, expected {WEIGHTS_KIND!r}")
    config = sidecar["config"]
    stored_layout = tuple(config.get("convs_per_stage", CONVS_PER_STAGE))
    if stored_layout != CONVS_PER_STAGE:
        raise ValueError(
            f"{path}: trained with {stored_layout} convolutions per stage, this code builds "
            f"{CONVS_PER_STAGE}; retrain the semantic network"
        )
    stored_norm = config.get("normalization", "none")
    if stored_norm != NORMALIZATION:
        raise ValueError(
            f"{path}: trained with normalization {stored_norm!r}, this code builds "
            f"{NORMALIZATION!r}; retrain the semantic network"
        )
    # Networks from before the pooling layout was recorded pooled four times, as VGG16 does.
    model = SemanticNet(config["widths"], config["num_classes"], config.get("pools", VGG16_POOLS))
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return fold_batchnorm(model).to(device)
