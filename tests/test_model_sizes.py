"""Model-size table: the paper configuration reproduces the paper's parameter counts within 1%."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seqgan import cli
from seqgan.config import load_params
from seqgan.report.model_sizes import model_size_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imagenet_table(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("sizes") / "model_sizes.csv"
    assert cli.main(["model-sizes", "--params", str(ROOT / "configs/imagenet.yaml"), "--out", str(out)]) == 0
    assert out.with_suffix(".md").read_text().startswith("# Model sizes (imagenet256 data, imagenet params)")
    return pd.read_csv(out).set_index("component")


@pytest.mark.parametrize(
    "component, paper",
    [
        ("tokenizer_phase1", 54_500_000),
        ("tokenizer_phase2", 57_900_000),
        ("transformer_base_ar", 172_000_000),
        ("transformer_base_nar", 172_000_000),
        ("transformer_large_ar", 305_000_000),
    ],
)
def test_paper_configuration_matches_paper_counts(imagenet_table, component, paper):
    row = imagenet_table.loc[component]
    assert row.paper_parameters == paper
    assert abs(row.parameters - paper) / paper < 0.01
    assert row.relative_difference == pytest.approx((row.parameters - paper) / paper)


def test_parts_add_up(imagenet_table):
    t = imagenet_table.parameters
    for phase in (1, 2):
        parts = (
            t[f"tokenizer_phase{phase}.encoder"]
            + t[f"tokenizer_phase{phase}.codebook"]
            + t[f"tokenizer_phase{phase}.decoder"]
        )
        assert parts == t[f"tokenizer_phase{phase}"]
    assert t["tokenizer_phase2"] - t["tokenizer_phase1"] == t["tokenizer_phase2.attention"]


def test_miniature_gets_no_paper_comparison():
    rows = model_size_rows(load_params(ROOT / "params.yaml"))
    assert rows and all(row.paper_parameters is None for row in rows)
    assert all(row.parameters > 0 for row in rows)


def test_miniature_table_is_written(tmp_path):
    out = tmp_path / "model_sizes.csv"
    assert cli.main(["model-sizes", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.paper_parameters.isna().all() and (table.parameters > 0).all()
