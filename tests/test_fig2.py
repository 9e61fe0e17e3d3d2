"""Fig. 2 is computed from recorded artefacts only: curves, transformer sidecars, tokenizer metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from seqgan import cli

ROOT = Path(__file__).resolve().parents[1]


def _write_run(
    root: Path, variant: str, objective: str, offset: float, psnr: float = 25.0, last: float = 4.2
) -> list[str]:
    """A run whose validation loss is 5.0, 4.5, 4.2, 4.2, ``last`` (+ offset) at steps 10..50: with the
    default ``last`` its endpoint is 4.3 + offset and its plateau holds."""
    run_dir = root / objective / variant
    run_dir.mkdir(parents=True)
    curve = run_dir / "curve.csv"
    steps = [10, 20, 30, 40, 50]
    val = [v + offset for v in (5.0, 4.5, 4.2, 4.2, last)]
    pd.DataFrame({"step": steps, "train_loss": [5.0, 4.0, 3.5, 3.4, 3.3], "val_loss": val}).to_csv(curve, index=False)
    sidecar = run_dir / "model.json"
    sidecar.write_text(
        json.dumps({"metrics": {"unigram_cross_entropy": 5.1 + offset, "val_curve": {"step": steps, "val_loss": val}}})
    )
    metrics = run_dir / "tokenizer.json"
    metrics.write_text(
        json.dumps(
            {
                "codebook_perplexity": 100.0 - offset,
                "codebook_usage": 0.9,
                "psnr": psnr,
                "rfid": 3.0,
                "classifier_accuracy_reconstructed": 0.8,
                "classifier_accuracy_original": 0.99,
                "tokenizer": {"val_curve": {"step": [100, 200], "val_loss": [0.5, 0.5]}},
            }
        )
    )
    return ["--run", variant, objective, str(curve), str(sidecar), str(metrics)]


def test_fig2_table_is_read_from_the_recorded_files(tmp_path):
    args = []
    for variant, offset in [("alpha0.0", 0.3), ("alpha1.0", 0.0), ("control", -0.5)]:
        args += _write_run(tmp_path, variant, "ar", offset)
    out = tmp_path / "fig" / "fig2_val_loss.pdf"
    assert cli.main(["fig2", "--params", str(ROOT / "params.yaml"), *args, "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and out.with_suffix(".png").stat().st_size > 0
    table = pd.read_csv(out.with_suffix(".csv")).set_index("variant")
    assert list(table.index) == ["alpha0.0", "alpha1.0", "control"]  # alphas in order, control last
    assert table.loc["alpha0.0", "final_val_loss"] == pytest.approx(4.5)
    assert table.loc["alpha0.0", "endpoint_val_loss"] == pytest.approx((4.2 + 4.2 + 4.2) / 3 + 0.3)
    assert table.loc["control", "min_val_loss"] == pytest.approx(3.7)
    assert table.loc["alpha1.0", "unigram_cross_entropy"] == pytest.approx(5.1)
    assert table.loc["control", "codebook_perplexity"] == pytest.approx(100.5)
    assert table.loc["alpha0.0", "final_step"] == 50
    assert "curve.csv" in table.loc["alpha0.0", "sources"]


def test_fig2_flags_a_tokenizer_below_a_quality_floor(tmp_path):
    args = _write_run(tmp_path, "alpha0.0", "ar", 0.3) + _write_run(tmp_path, "alpha1.0", "ar", 0.0, psnr=12.5)
    out = tmp_path / "fig2_val_loss.pdf"
    assert cli.main(["fig2", "--params", str(ROOT / "params.yaml"), *args, "--out", str(out)]) == 0
    table = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False).set_index("variant")
    floor = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluation"]["verdicts"]["tokenizer_min_psnr"]
    assert 12.5 < floor < 25.0  # the test's two tokenizers sit on either side of params.yaml's floor
    assert table.loc["alpha0.0", "below_floor"] == ""
    assert table.loc["alpha1.0", "below_floor"] == f"PSNR 12.50 dB < evaluation.verdicts.tokenizer_min_psnr {floor}"


def test_fig2_flags_a_run_short_of_its_plateau(tmp_path):
    """alpha 1's transformer falls 4.2 -> 3.9 over its last 20 % of steps (7 %): flagged, still drawn."""
    args = _write_run(tmp_path, "alpha0.0", "ar", 0.3) + _write_run(tmp_path, "alpha1.0", "ar", 0.0, last=3.9)
    out = tmp_path / "fig2_val_loss.pdf"
    assert cli.main(["fig2", "--params", str(ROOT / "params.yaml"), *args, "--out", str(out)]) == 0
    table = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False).set_index("variant")
    assert table.loc["alpha0.0", "not_converged"] == ""
    assert table.loc["alpha1.0", "not_converged"] == "transformer still improving"
    assert table.loc["alpha1.0", "endpoint_val_loss"] == pytest.approx((4.2 + 4.2 + 3.9) / 3)


def test_fig2_title_names_the_data_set_not_only_the_run(tmp_path, monkeypatch):
    """A user's own photos trained under the embedded run name: the title says whose data it is."""
    import seqgan.report.fig2 as fig2

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["name"] = "my_photos"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    titles = []
    plot = fig2.plot_fig2
    monkeypatch.setattr(fig2, "plot_fig2", lambda *a, **k: titles.append(k["title_note"]) or plot(*a, **k))
    args = _write_run(tmp_path, "alpha0.0", "ar", 0.0) + _write_run(tmp_path, "alpha1.0", "ar", 0.1)
    assert cli.main(["fig2", "--params", str(params), *args, "--out", str(tmp_path / "fig2.pdf")]) == 0
    assert titles == ["my_photos data, embedded params, base size, seed 0"]
