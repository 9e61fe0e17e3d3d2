"""Seconds-scale tokenizer and transformer sizes on params.yaml, shared by the tests that build
both networks (sampling, figures): one place to change when a size key changes."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_model_raw(conditional: bool = False) -> dict:
    """params.yaml as a dict with a 32-code 8-channel tokenizer and 1-layer d = 16 transformers."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["tokenizer"]["architecture"].update(
        base_channels=8,
        channel_mult=[1, 2, 2],
        num_res_blocks=1,
        extra_res_blocks=0,
        num_groups=4,
        codebook_size=32,
        code_dim=8,
    )
    for size in raw["transformer"]["sizes"].values():
        size.update(layers=1, heads=2, dim=16, mlp_dim=32)
    raw["transformer"]["conditional"] = conditional
    raw["transformer"]["num_classes"] = raw["data"]["synthetic"]["num_classes"]
    return raw
