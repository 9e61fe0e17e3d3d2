"""The networks the evaluation jobs measure with: the embedded semantic network (when it is the
params' backbone), the embedded judge, and the FID feature network named by
``evaluation.fid_network`` (judge, semantic or inception)."""

from __future__ import annotations

from pathlib import Path

import torch

from seqgan.config import Params
from seqgan.evaluate.fid import (
    FeatureNetwork,
    inception_feature_network,
    judge_feature_network,
    semantic_feature_network,
)
from seqgan.nets.judge import load_judge_net
from seqgan.nets.semantic import load_semantic_net, semantic_weights


def load_semantic(params: Params, path: str | Path | None, device: torch.device):
    """The embedded semantic network, or None for the VGG16 / Inception paper setting."""
    weights = semantic_weights(params, path)
    return None if weights is None else load_semantic_net(weights, device)


def load_judge(params: Params, path: str | Path | None, device: torch.device):
    """The embedded judge when ``evaluation.fid_network = judge`` (else None)."""
    if params.evaluation.fid_network != "judge":
        return None
    if not path:
        raise SystemExit("error: --judge is required when evaluation.fid_network = judge")
    return load_judge_net(path, device)


def fid_network(
    params: Params,
    semantic_net,
    semantic_path: str | Path | None,
    device: torch.device,
    judge_net=None,
    judge_path: str | Path | None = None,
) -> FeatureNetwork:
    if params.evaluation.fid_network == "inception":
        return inception_feature_network(device)
    if params.evaluation.fid_network == "judge":
        if judge_net is None:
            raise SystemExit("error: --judge is required when evaluation.fid_network = judge")
        return judge_feature_network(judge_net, weights_file=judge_path)
    return semantic_feature_network(semantic_net, weights_file=semantic_path)
