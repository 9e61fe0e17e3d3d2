"""Reproduced tables, the hyper-parameter audit and claims.md, on fake recorded artefacts (seconds).

The fakes are written with the keys the real producers record (eval-tokenizer, the checkpoint
sidecars, eval-samples), so these tests pin both the arithmetic and the reading of those files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from seqgan import cli
from seqgan.config import ParamsError, validate_params, with_seed
from seqgan.report import claims as C
from seqgan.report.artefacts import ArtefactLayout
from seqgan.report.audit import audit, flagged
from seqgan.report.stats import paired_differences, paired_interval, spread
from seqgan.report.tables import build_table, table_inputs, table_markdown
from seqgan.report.verdicts import generation as G
from seqgan.report.verdicts import outcomes as V
from seqgan.report.verdicts import validation_loss as L
from seqgan.runs import lineage_keys

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------
# Fake artefacts
# ----------------------------------------------------------------------------------------------


class Fakes:
    """Writes artefacts under tmp_path/results and tmp_path/models with the recorded keys."""

    def __init__(self, root: Path):
        self.layout = ArtefactLayout(root / "results", root / "models")

    @staticmethod
    def _write(path: Path, record: dict) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
        return path

    @staticmethod
    def _tokenizer_record(
        rfid, usage, psnr, perplexity, acc, phase, git, mask_iou=0.85, colour=30.0, background=20.0
    ) -> dict:
        return {
            "instrument": {
                "reconstructed": {
                    "mask_iou": mask_iou,
                    "shape_colour_delta_e": colour,
                    "background_delta_e": background,
                }
            },
            "rfid": rfid,
            "psnr": psnr,
            "codebook_usage": usage,
            "codebook_perplexity": perplexity,
            "codebook_used_codes": round(usage * 256),
            "codebook_size": 256,
            "classifier_accuracy_reconstructed": acc,
            "perceptual_metric": "perceptual_embedded_alpha0",
            "perceptual_embedded_alpha0": 0.01,
            "computed_with": {
                "images": {"split": "data/x/val", "count": 100},
                "rfid": {
                    "feature_network": {"name": "semantic_relu5_3_gap"},
                    "reference": {"name": "x/val", "count": 100},
                },
            },
            # a training curve flat over its last 20 %: the plateau holds
            "tokenizer": {
                "phase": phase,
                "git_revision": git,
                "val_curve": {"step": [100, 200, 300, 400, 500], "val_loss": [0.9, 0.6, 0.5, 0.5, 0.5]},
            },
        }

    def tokenizer(
        self,
        variant,
        seed,
        *,
        rfid=10.0,
        usage=1.0,
        psnr=17.0,
        perplexity=200.0,
        acc=0.8,
        git="abc1234",
        mask_iou=0.85,
        colour=30.0,
        background=20.0,
    ):
        return self._write(
            self.layout.tokenizer_metrics(variant, seed),
            self._tokenizer_record(rfid, usage, psnr, perplexity, acc, 1, git, mask_iou, colour, background),
        )

    def phase2(self, seed=0, *, rfid=8.0, usage=1.0, psnr=18.0, perplexity=200.0, acc=0.8, git="def5678", colour=25.0):
        return self._write(
            self.layout.phase2_metrics(seed),
            self._tokenizer_record(rfid, usage, psnr, perplexity, acc, 2, git, colour=colour, background=15.0),
        )

    def tokenizer_sidecar(self, variant, seed, *, parameters=54_450_000, code_dim=256):
        return self._write(
            self.layout.tokenizer_sidecar(variant, seed),
            {
                "git_revision": "abc1234",
                "num_parameters": parameters,
                "config": {"architecture": {"code_dim": code_dim}},
            },
        )

    def phase2_sidecar(self, seed=0, *, parameters=57_870_000):
        return self._write(self.layout.phase2_sidecar(seed), {"git_revision": "def5678", "num_parameters": parameters})

    def transformer(self, objective, size, variant, seed, *, loss=3.0, unigram=5.0, parameters=172_000_000, curve=None):
        """A sidecar whose validation curve (default: flat over its last three points at ``loss``,
        so endpoint = final loss and the plateau holds) ends at ``loss``."""
        curve = curve or {"step": [100, 200, 300, 400, 500], "val_loss": [loss + 0.5, loss + 0.2, loss, loss, loss]}
        return self._write(
            self.layout.transformer_sidecar(objective, size, variant, seed),
            {
                "git_revision": "fed9876",
                "num_parameters": parameters,
                "metrics": {
                    "final_val_loss": curve["val_loss"][-1],
                    "unigram_cross_entropy": unigram,
                    "val_curve": curve,
                },
            },
        )

    def generation(
        self,
        objective,
        size,
        variant,
        decoder,
        seed,
        *,
        fid,
        confident=0.8,
        reference=0.9,
        tv=0.05,
        floor=0.05,
        inception_score=None,
        classifier=True,
        tokens="t0",
    ):
        view = (
            {
                "name": "semantic",
                "confident_fraction": confident,
                "reference": {"confident_fraction": reference},
                "histogram_tv_distance": tv,
                "histogram_noise_floor": {"mean": floor, "std": 0.01, "draws": 100, "set_size": 100, "seed": seed},
            }
            if classifier
            else None
        )
        return self._write(
            self.layout.generation_metrics(objective, size, variant, decoder, seed),
            {
                "fid": fid,
                "inception_score": inception_score,
                "classifier": view,
                "num_samples": 100,
                "seed": seed,
                "objective": objective,
                "size": size,
                "variant": variant,
                "decoder": decoder,
                "feature_network": {"name": "semantic_relu5_3_gap"},
                "reference": {"file": "results/fid_refs/train.npz", "split": "train", "name": "x/train", "count": 1000},
                "samples": {"tokens_sha256": f"{tokens}-{objective}-{seed}"},
            },
        )


def params_from(path: Path, **changes):
    """A params file's values with dotted-key changes, validated."""
    raw = copy.deepcopy(yaml.safe_load(path.read_text()))
    for key, value in changes.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return validate_params(raw, str(path))


def embedded_params(**changes):
    base = {
        "tokenizer.alphas": [0.0, 0.5, 1.0],
        "tokenizer.control_no_perceptual": True,
        "tokenizer.phase2.from_alpha": 1.0,
        "transformer.objectives": ["ar"],
        "transformer.models": ["base"],
        "transformer.conditional": False,
        "evaluation.experiment_seeds": [0, 1, 2],
        "evaluation.sampling_seeds": [0, 1],
        "run.seed": 0,
        "tokenizer.quantizer.entropy_weight": 0.01,
        "tokenizer.control_no_entropy": True,
        "evaluation.verdicts.tokenizer_min_psnr": 15.0,
        "evaluation.verdicts.tokenizer_min_usage": 0.25,
    }
    base.update(changes)
    # claim 2's alpha ends at the experiment seeds only, unless a test asks for more
    base.setdefault("evaluation.confirmatory_seeds", base["evaluation.experiment_seeds"])
    return params_from(ROOT / "params.yaml", **base)


def imagenet_params(**changes):
    base = {"tokenizer.alphas": [0.0, 1.0], "evaluation.sampling_seeds": [0, 1], "evaluation.experiment_seeds": [0]}
    base.update(changes)
    base.setdefault("evaluation.confirmatory_seeds", base["evaluation.experiment_seeds"])
    return params_from(ROOT / "configs" / "imagenet.yaml", **base)


# ----------------------------------------------------------------------------------------------
# Seed-spread arithmetic
# ----------------------------------------------------------------------------------------------


def test_spread_is_mean_sample_std_and_range():
    s = spread([1.0, 2.0, 4.0])
    assert s.mean == pytest.approx(7 / 3)
    assert s.std == pytest.approx(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) ** 0.5 / 2**0.5)
    assert (s.minimum, s.maximum, s.count) == (1.0, 4.0, 3)
    one = spread([2.5])
    assert one.std is None and "n = 1" in one.describe()
    with pytest.raises(ValueError):
        spread([])


def test_paired_differences_and_their_t_interval():
    by_seed = {1: {"alpha0.0": 4.1, "alpha1.0": 3.9}, 0: {"alpha0.0": 4.0, "alpha1.0": 3.95}}
    diffs = paired_differences(by_seed, "alpha1.0", "alpha0.0")
    assert list(diffs) == [0, 1]
    assert diffs[0] == pytest.approx(-0.05) and diffs[1] == pytest.approx(-0.2)

    interval = paired_interval({0: -0.2, 1: -0.25, 2: -0.15}, 0.95)
    half = 4.302652729911275 * 0.05 / math.sqrt(3)  # t_0.975 with 2 degrees of freedom (tables)
    assert interval.mean == pytest.approx(-0.2)
    assert interval.low == pytest.approx(-0.2 - half) and interval.high == pytest.approx(-0.2 + half)
    assert interval.describe() == "-0.200, 95% interval [-0.324, -0.076] (n = 3)"
    wider = paired_interval({0: -0.2, 1: -0.25, 2: -0.15}, 0.99)
    assert wider.low < interval.low and wider.high > interval.high
    one = paired_interval({0: -0.3}, 0.95)
    assert one.low is None and one.high is None and L.paired_verdict(one) == V.UNDECIDED


def test_paired_verdict_rule():
    def verdict(*diffs):
        return L.paired_verdict(paired_interval(dict(enumerate(diffs)), 0.95))

    assert verdict(-0.2, -0.25, -0.15) == V.HOLDS
    assert verdict(0.2, 0.25, 0.15) == V.DOES_NOT_HOLD  # the interval excludes the paper's direction
    assert verdict(-0.2, -0.25, 0.01) == V.UNDECIDED  # one seed disagrees
    assert verdict(-0.2, -0.01, -0.001) == V.UNDECIDED  # every seed agrees, the interval crosses zero
    assert verdict(0.01, -0.2, 0.02) == V.UNDECIDED


def test_two_seeds_give_an_interval_and_one_keeps_its_confidence():
    from seqgan.report.stats import PairedInterval

    two = paired_interval({0: -0.2, 1: -0.3}, 0.95)
    half = 12.706204736174707 * math.sqrt(0.005) / math.sqrt(2)  # t_0.975 with 1 degree of freedom
    assert two.low == pytest.approx(-0.25 - half) and two.high == pytest.approx(-0.25 + half)
    assert paired_interval({0: -0.3}, 0.9) == PairedInterval({0: -0.3}, -0.3, None, None, 0.9)


def test_paired_verdict_at_zero_and_with_a_seed_that_did_not_move():
    """Claim 2's loss rule: every seed's difference strictly negative and the interval below 0; an
    interval that is exactly 0 (no change in any seed) excludes nothing, so it is undecided."""

    def verdict(*diffs):
        return L.paired_verdict(paired_interval(dict(enumerate(diffs)), 0.95))

    assert verdict(0.0, 0.0, 0.0) == V.UNDECIDED
    # nine seeds 10 lower, one unchanged (or barely higher): the interval is below 0, not every seed is
    assert verdict(*[-10.0] * 9, 0.0) == V.UNDECIDED
    assert verdict(*[-10.0] * 9, 0.5) == V.UNDECIDED


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------


def test_table6_cells_paper_reproduced_difference_and_not_run(tmp_path):
    params = imagenet_params()
    f = Fakes(tmp_path)
    f.tokenizer("alpha0.0", 0, rfid=3.60)
    f.tokenizer("alpha1.0", 0, rfid=2.50)
    for variant, ar, nar in (("alpha0.0", (17.0, 18.0), (13.0, 13.0)), ("alpha1.0", (12.0, 12.5), (9.0, 8.0))):
        for seed in (0, 1):
            f.generation("ar", "base", variant, "phase1", seed, fid=ar[seed])
            f.generation("nar", "base", variant, "phase1", seed, fid=nar[seed])
            f.transformer("ar", "base", variant, 0)
            f.transformer("nar", "base", variant, 0)

    table = build_table(params, "table6_perceptual_layers", f.layout)
    low_rfid = table.cell("low", "rfid")
    assert low_rfid.reproduced == pytest.approx(3.60) and low_rfid.difference == pytest.approx(3.60 - 3.45)
    low_ar = table.cell("low", "ar")
    assert low_ar.reproduced == pytest.approx(17.5) and low_ar.difference == pytest.approx(17.5 - 16.97)
    assert low_ar.measurement.std == pytest.approx(0.5**0.5) and low_ar.measurement.count == 2
    assert table.cell("sem", "nar").difference == pytest.approx(8.5 - 8.84)
    for row in ("A", "B", "C", "D", "E"):
        cell = table.cell(row, "rfid")
        assert cell.status == "not run" and cell.reproduced is None and "layer set" in cell.spec.note

    # The run behind a value: params hash of its sections and the git revision recorded in the file.
    m = low_rfid.measurement
    assert m.identity.params_hash == params.section_hash(*lineage_keys("tokenizer_phase1", params.raw))
    assert m.identity.git_revision == "abc1234"
    assert m.feature_network == "semantic_relu5_3_gap" and "x/val" in m.dataset
    assert "fed9876" in low_ar.measurement.identity.git_revision  # transformer sidecar's revision
    md = table_markdown(table, params)
    assert "3.45 / 3.60 / +0.15" in md and "not run (layer set" in md


def test_table_inputs_are_exactly_the_files_read(tmp_path):
    f = Fakes(tmp_path)
    inputs = table_inputs(embedded_params(), "table6_perceptual_layers", f.layout)
    gen = [
        f"results/metrics/generation/ar/base/{v}/phase1/seed{s}.json" for v in ("alpha0.0", "alpha1.0") for s in (0, 1)
    ]
    expected = {f"results/metrics/tokenizer/phase1/{v}/seed0.json" for v in ("alpha0.0", "alpha1.0")}
    expected |= set(gen) | {f"models/transformer/ar/base/{v}/seed0/model.json" for v in ("alpha0.0", "alpha1.0")}
    assert {str(Path(p).relative_to(tmp_path)) for p in inputs} == expected  # no NAR: objectives = [ar]
    assert table_inputs(embedded_params(), "table4_imagenet_conditional", f.layout) == []  # unconditional


def test_embedded_table2_uses_a_this_run_column_without_difference(tmp_path):
    params = embedded_params()
    f = Fakes(tmp_path)
    f.phase2(rfid=50.0, usage=0.98)
    f.tokenizer("alpha1.0", 0, rfid=60.0, usage=0.97)
    table = build_table(params, "table2_reconstruction", f.layout)
    ours = table.cell("seqgan", "rfid_this_run")
    assert ours.reproduced == pytest.approx(50.0) and ours.difference is None and ours.spec.paper is None
    assert table.cell("seqgan_phase1", "usage_this_run").reproduced == pytest.approx(0.97)
    paper_col = table.cell("seqgan", "rfid_imagenet")
    assert paper_col.status == "not run" and "dataset imagenet not in use" in paper_col.spec.note
    assert paper_col.spec.paper == pytest.approx(1.99)
    assert table.cell("vqgan", "rfid_this_run").status == "not run"


def test_imagenet_tables_3_4_1_by_conditioning_and_sizes(tmp_path):
    params = imagenet_params()
    f = Fakes(tmp_path)
    table3 = build_table(params, "table3_unconditional", f.layout)
    assert all(c.status == "not run" for c in table3.cells)
    assert "transformer.conditional = true" in table3.cell("seqgan_nar", "ffhq").spec.note

    f.phase2_sidecar(parameters=57_870_000)
    for objective in ("ar", "nar"):
        for size, n in (("base", 172_000_000), ("large", 305_000_000)):
            f.transformer(objective, size, "alpha1.0", 0, parameters=n)
            for seed in (0, 1):
                f.generation(objective, size, "alpha1.0", "phase2", seed, fid=5.0 + seed, inception_score=150.0 + seed)
    table4 = build_table(params, "table4_imagenet_conditional", f.layout)
    params_cell = table4.cell("seqgan_ar", "params_m")
    assert params_cell.reproduced == pytest.approx(229.87) and params_cell.difference == pytest.approx(0.87)
    assert table4.cell("seqgan_nar_l", "fid").difference == pytest.approx(5.5 - 4.55)
    assert table4.cell("seqgan_nar", "inception_score").reproduced == pytest.approx(150.5)
    assert table4.cell("maskgit", "fid").status == "not run"

    unconditional = build_table(
        imagenet_params(**{"transformer.conditional": False}), "table4_imagenet_conditional", f.layout
    )
    assert all(c.status == "not run" for c in unconditional.cells)

    # Table 1 reads the AR-L runs with both decoders; conv x2 and AR-L-2x are never run.
    inputs = table_inputs(params, "table1_decoder_capacity", f.layout)
    assert any("ar/large/alpha1.0/phase2" in p for p in inputs) and not any("conv" in p for p in inputs)


def test_tables_cli_writes_markdown_and_csv(tmp_path):
    f = Fakes(tmp_path)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(embedded_params().raw, sort_keys=False))
    f.tokenizer("alpha0.0", 0, rfid=30.0, usage=0.99)
    f.tokenizer_sidecar("alpha0.0", 0, code_dim=32)
    f.transformer("ar", "base", "alpha0.0", 0)
    for seed in (0, 1):
        f.generation("ar", "base", "alpha0.0", "phase1", seed, fid=40.0 + seed)
    out = tmp_path / "tables"
    args = [
        "tables",
        "--params",
        str(params_file),
        "--results-dir",
        str(f.layout.results),
        "--models-dir",
        str(f.layout.models),
        "--table",
        "table5_codebook",
        "--out-dir",
        str(out),
    ]
    assert cli.main(args) == 0
    frame = pd.read_csv(out / "table5_codebook.csv").set_index(["row", "column"])
    assert frame.loc[("entropy", "ar"), "reproduced"] == pytest.approx(40.5)
    assert pd.isna(frame.loc[("entropy", "ar"), "difference"])  # shapes32 vs ImageNet: not comparable
    assert frame.loc[("entropy", "code_dim"), "difference"] == pytest.approx(32 - 256)
    assert frame.loc[("kmeans", "usage"), "status"] == "not run"
    assert frame.loc[("entropy", "usage"), "git_revision"] == "abc1234"
    assert "not comparable" in frame.loc[("entropy", "rfid"), "note"]
    md = (out / "table5_codebook.md").read_text()
    assert "n.c." in md and "k-means codebook initialisation not built" in md

    (f.layout.generation_metrics("ar", "base", "alpha0.0", "phase1", 1)).unlink()
    with pytest.raises(SystemExit, match="missing artefact .*alpha0.0/phase1/seed1.json"):
        cli.main(args)  # a missing artefact is an error naming it, never a silent gap


# ----------------------------------------------------------------------------------------------
# Hyper-parameter audit
# ----------------------------------------------------------------------------------------------


def test_audit_of_the_imagenet_config_flags_nothing_because_nothing_differs():
    """configs/imagenet.yaml holds every value of supplement Tables 3-4 (ImageNet column): no flag.

    Epochs are derived: 500,000 x 256 / 1,281,167 = 99.9, printed as 100 -> same. Keys the tables
    leave open are 'not stated', optimizer types are not params keys, split sizes come from the data.
    """
    lines = audit(params_from(ROOT / "configs" / "imagenet.yaml"))
    assert flagged(lines) == []
    by_name = {(line.setting.group, line.setting.name): line for line in lines}
    assert by_name[("phase 1", "epochs")].status == "same"
    assert by_name[("phase 1", "epochs")].in_use.value == pytest.approx(99.909, abs=1e-3)
    assert by_name[("phase 2", "LR decay")].status == "not stated"
    assert by_name[("AR and NAR", "optimizer")].status == "not a params key"
    assert by_name[("dataset", "training images")].status == "set by the data"
    assert {line.status for line in lines} <= {"same", "not stated", "not a params key", "set by the data"}


def test_audit_flags_exactly_the_changed_keys():
    changed = params_from(
        ROOT / "configs" / "imagenet.yaml",
        **{"tokenizer.phase1.lr": 2.0e-4, "transformer.nar.temperature": 0.65, "transformer.ar.top_k": 100},
    )
    assert flagged(audit(changed)) == ["tokenizer.phase1.lr", "transformer.nar.temperature"]  # top_k: not stated


def test_audit_of_lsun_flags_the_held_out_validation_split():
    """LSUN has no validation split ('-' in Table 3); the configs hold 1 % out for the validation loss."""
    for name in ("lsun_cat", "lsun_bedroom", "lsun_church"):
        assert flagged(audit(params_from(ROOT / "configs" / f"{name}.yaml"))) == ["data.folder.val_holdout_fraction"]
    assert flagged(audit(params_from(ROOT / "configs" / "ffhq.yaml"))) == []


def test_audit_of_the_embedded_default_compares_with_the_ablation_setting():
    params = params_from(ROOT / "params.yaml", **{"tokenizer.phase1.lr": 4.0e-4})
    lines = audit(params)
    assert {line.compared_column for line in lines} == {"imagenet_ablation"}
    flags = flagged(lines)
    assert "tokenizer.phase1.lr" in flags and "tokenizer.phase1.beta1" not in flags


@pytest.mark.parametrize(
    "config", ["params.yaml", *sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if p.stem != "embedded")]
)
def test_audit_cli_runs_for_every_params_file(tmp_path, config):
    path = ROOT / config if config == "params.yaml" else ROOT / "configs" / config
    out = tmp_path / "hparam_audit.csv"
    assert cli.main(["hparam-audit", "--params", str(path), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert {"paper_imagenet", "paper_lsun_church", "in_use", "status", "params_key"} <= set(frame.columns)
    assert len(frame) == len(audit(params_from(path)))
    assert "difference(s) flagged" in out.with_suffix(".md").read_text()


# ----------------------------------------------------------------------------------------------
# Claims
# ----------------------------------------------------------------------------------------------


ALPHAS = ("alpha0.0", "alpha0.5", "alpha1.0")


def write_claim_inputs(
    f: Fakes,
    *,
    losses=None,
    control_loss=4.5,
    gen_fids=(30.0, 25.0, 20.0),
    confident=0.8,
    usage=1.0,
    p1_fid=20.0,
    p2_fid=18.0,
    p1_psnr=17.0,
    p2_psnr=18.0,
    p1_rfid=10.0,
    p2_rfid=8.0,
    p2_colour=25.0,
    tv=0.05,
    floor=0.05,
    sampling_seeds=(0, 1),
    no_entropy_usage=(0.4, 0.5, 0.45),
    mask_iou=None,
):
    """A full claims input tree for embedded_params(): 3 experiment seeds, 2 sampling seeds, AR base.

    Generation FIDs are ``value + sampling seed``: with seeds 0 and 1 every set's std over sampling
    seeds is 0.707, so the resolution margin (fid_spread_factor 2.0) is 1.414."""
    losses = losses or {0: (4.2, 4.1, 4.0), 1: (4.3, 4.18, 4.05), 2: (4.25, 4.16, 4.1)}
    for seed, values in losses.items():
        for variant, loss in zip(ALPHAS, values, strict=True):
            f.transformer("ar", "base", variant, seed, loss=loss, unigram=5.0 + loss / 10)
            f.tokenizer(
                variant,
                seed,
                usage=usage,
                psnr=p1_psnr if variant == "alpha1.0" else 17.5,
                rfid=p1_rfid if variant == "alpha1.0" else 12.0,
                mask_iou=0.85 if mask_iou is None else mask_iou[seed][variant],
            )
        f.transformer("ar", "base", "control", seed, loss=control_loss)
        f.tokenizer("control", seed, usage=usage)
        f.tokenizer("noentropy", seed, usage=no_entropy_usage[seed], psnr=17.5)
    for seed in losses:  # phase 2 on every experiment seed; a little spread between seeds
        f.phase2(seed, rfid=p2_rfid + 0.1 * seed, psnr=p2_psnr, usage=usage, colour=p2_colour + 0.2 * seed)
    view = dict(confident=confident, tv=tv, floor=floor)
    for sampling_seed in sampling_seeds:
        for variant, fid in zip(ALPHAS, gen_fids, strict=True):
            value = p1_fid if variant == "alpha1.0" else fid
            f.generation("ar", "base", variant, "phase1", sampling_seed, fid=value + sampling_seed, **view)
        f.generation("ar", "base", "control", "phase1", sampling_seed, fid=50.0, **view)
        f.generation("ar", "base", "alpha1.0", "phase2", sampling_seed, fid=p2_fid + sampling_seed, **view)


def claims_by_number(tmp_path, params=None, **scenario):
    f = Fakes(tmp_path)
    write_claim_inputs(f, **scenario)
    params = params or embedded_params()
    return {c.number: c for c in C.evaluate_claims(params, f.layout)}, f


def test_claims_inputs_list_every_file_read(tmp_path):
    claims, f = claims_by_number(tmp_path)
    inputs = set(C.claims_inputs(embedded_params(), f.layout))
    # (tokenizer metrics + AR sidecar) x variants x seeds, no-entropy metrics x seeds, gen, phase 2 x seeds
    assert len(inputs) == 3 * 4 * 2 + 3 + 2 * 4 + 2 + 3
    for claim in claims.values():
        assert set(claim.sources) <= inputs


def test_claim2_holds_when_every_paired_interval_is_below_zero(tmp_path):
    claims, _ = claims_by_number(tmp_path, gen_fids=(30.0, 25.0, 0.0), p1_fid=20.0)
    claim = claims[2]
    loss_part, gen_part = claim.parts
    assert loss_part.verdict == V.HOLDS and gen_part.verdict == V.HOLDS and claim.verdict == V.HOLDS
    text = "\n".join(loss_part.evidence)
    # paired alpha1.0 - alpha0.0 per seed: -0.2, -0.25, -0.15 -> mean -0.2, std 0.05, t-interval (2 dof)
    assert (
        "| alpha1.0 - alpha0.0 | -0.200 | -0.250 | -0.150 | -0.200, 95% interval [-0.324, -0.076] (n = "
        "3) | yes | holds |" in text
    )
    assert "| alpha0.5 - alpha0.0 |" in text and "| alpha1.0 - alpha0.5 |" in text
    assert "| control - alpha0.0 |" in text and "(context)" in text  # the control beside, no verdict
    assert not any("control" in c and "below every alpha" in c for c in claim.caveats)


def test_claim2_compares_endpoints_flags_runs_short_of_their_plateau_and_states_its_power(tmp_path):
    """Seed 1's alpha 1 transformer ends still improving: its endpoint is the mean of its last three
    evaluations (not its last point), and it is flagged; so is a tokenizer still improving."""
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    f.transformer(
        "ar", "base", "alpha1.0", 1, curve={"step": [100, 200, 300, 400, 500], "val_loss": [5.0, 4.6, 4.3, 4.2, 3.9]}
    )
    record = json.loads(f.layout.tokenizer_metrics("alpha0.0", 2).read_text())
    record["tokenizer"]["val_curve"] = {"step": [100, 200, 300, 400, 500], "val_loss": [0.9, 0.7, 0.6, 0.55, 0.5]}
    f._write(f.layout.tokenizer_metrics("alpha0.0", 2), record)
    claims = {c.number: c for c in C.evaluate_claims(embedded_params(), f.layout)}
    claim = claims[2]
    text = "\n".join(claim.parts[0].evidence)
    # endpoint (4.3 + 4.2 + 3.9) / 3 = 4.133 against alpha 0's 4.3: -0.167, not the last point's -0.4
    assert "| alpha1.0 - alpha0.0 | -0.200 | -0.167 | -0.150 |" in text
    assert "| alpha1.0 | " in text and " | 2/3 | " in text  # plateau reached in two seeds of three
    flagged = [c for c in claim.caveats if "not trained to its plateau" in c]
    assert len(flagged) == 2
    assert (
        "AR base on alpha1.0, seed 1" in flagged[0] and "4.2000 at step 400 -> 3.9000 at step 500, +7.14%" in flagged[0]
    )
    assert "tokenizer alpha0.0 seed 2" in flagged[1] and "+9.09%" in flagged[1]
    assert any("tokenizer alpha0.0 seed 2" in c for c in claims[3].caveats)
    # power of alpha1.0 - alpha0.0 over the three seeds (-0.2, -0.167, -0.15): sd 0.0255
    power = next(line for line in claim.parts[0].evidence if line.startswith("Power of alpha1.0 - alpha0.0"))
    assert "n = 3, paired sd 0.025, 95% half-width 0.063, minimum detectable effect 0.079 (at 80% power)" in power
    assert "target half-width 0.05 (`evaluation.verdicts.target_half_width`): not reached" in power


def test_claim2_compares_its_alpha_ends_over_the_confirmatory_seeds_and_the_rest_over_the_experiment_seeds(tmp_path):
    """Confirmatory seeds 0-4, experiment seeds 0-2: only alpha0.0 and alpha1.0 (and their ARs) exist at
    seeds 3 and 4. The ends' paired difference uses all five seeds (its power too), the pairs with
    alpha 0.5 the three seeds they share; claims 1, 3 and 4 stay on the experiment seeds."""
    from seqgan.report.numbers import collect_numbers

    f = Fakes(tmp_path)
    write_claim_inputs(f)
    extra = {3: (4.22, 4.12), 4: (4.28, 4.08)}  # alpha0.0, alpha1.0 endpoints: differences -0.10, -0.20
    for seed, (low, high) in extra.items():
        for variant, loss in (("alpha0.0", low), ("alpha1.0", high)):
            f.transformer("ar", "base", variant, seed, loss=loss)
            f.tokenizer(variant, seed, psnr=17.5)
    params = embedded_params(**{"evaluation.confirmatory_seeds": [0, 1, 2, 3, 4]})
    inputs = set(C.claims_inputs(params, f.layout))
    assert str(f.layout.tokenizer_metrics("alpha1.0", 4)) in inputs
    assert str(f.layout.transformer_sidecar("ar", "base", "alpha0.0", 3)) in inputs
    assert not any("seed3" in p or "seed4" in p for p in inputs if "alpha0.5" in p or "control" in p or "phase2" in p)
    # the default inputs plus tokenizer + AR of the two ends at two more seeds
    assert len(inputs) == len(C.claims_inputs(embedded_params(), f.layout)) + 2 * 2 * 2

    claims = {c.number: c for c in C.evaluate_claims(params, f.layout)}
    text = "\n".join(claims[2].parts[0].evidence)
    # ends: -0.2, -0.25, -0.15, -0.1, -0.2 (mean -0.18); alpha 0.5's pairs: three seeds, "-" at 3 and 4
    assert "| alpha1.0 - alpha0.0 | -0.200 | -0.250 | -0.150 | -0.100 | -0.200 | -0.180, 95% interval" in text
    assert "(n = 5) | yes | holds |" in text
    assert "| alpha1.0 - alpha0.5 | -0.100 | -0.130 | -0.060 | - | - |" in text and "(n = 3)" in text
    assert "| 3 | 4.220 | - | 4.120 | - |" in text  # seed 3's endpoints: the ends only
    assert "Outcome: passes" in text and "mask IoU, seed 4" in text  # manipulation checked on all five
    power = next(line for line in claims[2].parts[0].evidence if line.startswith("Power of alpha1.0 - alpha0.0"))
    assert "n = 5, paired sd 0.057" in power
    assert "seed 3" not in "\n".join(claims[3].parts[0].evidence)  # claim 3: experiment seeds only
    numbers = collect_numbers(params, f.layout)
    ends = numbers.numbers["transformer/ar/base/alpha1.0/endpoint_val_loss"]
    assert sorted(ends.values) == [0, 1, 2, 3, 4]
    assert sorted(numbers.numbers["transformer/ar/base/alpha0.5/endpoint_val_loss"].values) == [0, 1, 2]


def test_confirmatory_seeds_contain_the_experiment_seeds_and_never_a_pilot_seed():
    with pytest.raises(ParamsError, match=r"must include every experiment seed \(missing \[2\]\)"):
        embedded_params(**{"evaluation.confirmatory_seeds": [0, 1, 5]})
    with pytest.raises(ParamsError, match=r"shares \[100\] with evaluation.confirmatory_seeds"):
        embedded_params(**{"evaluation.confirmatory_seeds": [0, 1, 2, 100], "evaluation.pilot_seeds": [100, 101]})
    params = embedded_params(**{"evaluation.confirmatory_seeds": [0, 1, 2, 3]})
    assert with_seed(params, 3).run.seed == 3  # a confirmatory seed is a training seed of every rule
    with pytest.raises(ParamsError, match="not one of evaluation.confirmatory_seeds"):
        with_seed(params, 7)


def test_claim2_loss_is_no_test_when_alpha_made_one_seeds_tokens_less_semantic(tmp_path):
    """The losses say *holds* (as in the test above), but in seed 1 alpha 1's reconstructions keep
    less of the shapes than alpha 0's: the manipulation check fails and no verdict is drawn."""
    iou = {s: {"alpha0.0": 0.80, "alpha0.5": 0.82, "alpha1.0": 0.84} for s in (0, 1, 2)}
    iou[1]["alpha1.0"] = 0.79
    claims, _ = claims_by_number(tmp_path, gen_fids=(30.0, 25.0, 0.0), p1_fid=20.0, mask_iou=iou)
    loss_part = claims[2].parts[0]
    assert loss_part.verdict == V.NOT_TESTABLE and claims[2].verdict == V.NOT_TESTABLE
    text = "\n".join(loss_part.evidence)
    assert "Outcome: fails: mask IoU alpha1.0 - alpha0.0 = +0.023" in text
    assert "the losses alone read *holds*" in text
    assert "| alpha1.0 | 0.840 | 0.790 | 0.840 |" in text
    # every seed at least as semantic: the check passes and the losses decide
    iou[1]["alpha1.0"] = 0.80
    claims, _ = claims_by_number(tmp_path / "b", gen_fids=(30.0, 25.0, 0.0), p1_fid=20.0, mask_iou=iou)
    assert claims[2].parts[0].verdict == V.HOLDS
    assert "Outcome: passes" in "\n".join(claims[2].parts[0].evidence)


def test_manipulation_check_without_ground_truth_is_not_measured() -> None:
    from seqgan.report.verdicts.manipulation import ManipulationCheck, manipulation_check, semantic_fidelity

    assert semantic_fidelity({"psnr": 20.0}) is None
    check = manipulation_check({0: {"a1": None, "a0": 0.8}}, "a1", "a0", 0.0, 0.95)
    assert not check.passed and check.interval is None and check.describe().startswith("not measured")
    assert check == ManipulationCheck("a1", "a0", {0: {"a1": None, "a0": 0.8}}, 0.0, None, False)
    assert check.describe() == (
        "not measured: no ground-truth semantic fidelity for a1 and a0 in every seed (real images have no shape masks)"
    )
    check = manipulation_check({0: {"a1": 0.9, "a0": 0.8}, 1: {"a1": 0.75, "a0": 0.8}}, "a1", "a0", 0.0, 0.95)
    assert not check.passed and check.interval is not None


def test_claim2_is_undecided_when_one_seed_disagrees(tmp_path):
    losses = {0: (4.2, 4.1, 4.0), 1: (4.3, 4.35, 4.05), 2: (4.25, 4.16, 4.1)}  # seed 1: alpha 0.5 above 0.0
    claims, _ = claims_by_number(tmp_path, losses=losses)
    assert claims[2].parts[0].verdict == V.UNDECIDED and claims[2].verdict == V.UNDECIDED
    assert "| alpha0.5 - alpha0.0 | -0.100 | 0.050 |" in "\n".join(claims[2].parts[0].evidence)


def test_claim2_does_not_hold_when_the_interval_excludes_the_papers_direction(tmp_path):
    losses = {0: (4.0, 4.1, 4.2), 1: (4.05, 4.18, 4.3), 2: (4.1, 4.16, 4.25)}  # larger alpha, higher loss
    claims, _ = claims_by_number(tmp_path, losses=losses)
    assert claims[2].parts[0].verdict == V.DOES_NOT_HOLD and claims[2].verdict == V.DOES_NOT_HOLD


def test_claim2_with_one_seed_is_undecided(tmp_path):
    claims, _ = claims_by_number(tmp_path, params=embedded_params(**{"evaluation.experiment_seeds": [0]}))
    assert claims[2].parts[0].verdict == V.UNDECIDED
    assert "(n = 1, no interval)" in "\n".join(claims[2].parts[0].evidence)


def test_claim2_adds_the_control_caveat_when_the_control_is_lowest(tmp_path):
    claims, _ = claims_by_number(tmp_path, control_loss=3.3)
    assert any("below every alpha" in c for c in claims[2].caveats)


def test_generation_halves_are_not_testable_when_samples_are_unrecognisable(tmp_path):
    claims, _ = claims_by_number(tmp_path, confident=0.2)  # 0.2 < 0.5 x 0.9
    assert claims[2].parts[1].verdict == V.NOT_TESTABLE
    assert claims[2].verdict == V.NOT_TESTABLE  # the loss half holds; no verdict drawn from noise
    assert claims[4].parts[0].verdict == V.NOT_TESTABLE
    assert claims[1].parts[1].verdict == V.NOT_TESTABLE
    assert any("0.200" in line for line in claims[2].parts[1].evidence)


def test_generation_halves_are_not_testable_when_confident_samples_have_a_skewed_class_histogram(tmp_path):
    # the embedded default's case: confident like real images, histogram 3 x beyond the noise floor
    claims, _ = claims_by_number(tmp_path, confident=0.99, tv=0.355, floor=0.12)
    assert claims[2].parts[0].verdict == V.HOLDS and claims[2].parts[1].verdict == V.NOT_TESTABLE
    assert claims[4].parts[0].verdict == V.NOT_TESTABLE and claims[1].parts[1].verdict == V.NOT_TESTABLE
    text = "\n".join(claims[2].parts[1].evidence)
    assert "class-histogram TV distance 0.355 > 2.0 x the noise floor 0.120" in text
    assert "confident fraction" not in text.split("no: ")[1].split("|")[0]  # (a) passes, only (b) fails


def test_a_histogram_within_the_noise_floor_factor_and_confident_samples_are_usable(tmp_path):
    v = embedded_params().evaluation.verdicts
    f = Fakes(tmp_path)
    # exactly at the factor (0.24 = 2.0 x 0.12): usable; just above: not
    at = C.generation_run(
        f.generation("ar", "base", "alpha1.0", "phase1", 0, fid=5.0, confident=0.95, tv=0.24, floor=0.12),
        "ar",
        "alpha1.0",
        "phase1",
        0,
    )
    assert G.unusable_reason(at, v) is None
    above = C.generation_run(
        f.generation("ar", "base", "alpha0.0", "phase1", 0, fid=5.0, confident=0.95, tv=0.25, floor=0.12),
        "ar",
        "alpha0.0",
        "phase1",
        0,
    )
    assert "TV distance 0.250 > 2.0 x the noise floor 0.120" in G.unusable_reason(above, v)
    claims, _ = claims_by_number(tmp_path / "c", confident=0.95, tv=0.2, floor=0.12, gen_fids=(30.0, 25.0, 0.0))
    assert claims[2].parts[1].verdict == V.HOLDS


def test_inception_generation_metrics_without_classifier_view_are_testable(tmp_path):
    f = Fakes(tmp_path)
    path = f.generation("ar", "base", "alpha1.0", "phase1", 0, fid=5.0, classifier=False)
    run = C.generation_run(path, "ar", "alpha1.0", "phase1", 0)
    assert G.unusable_reason(run, embedded_params().evaluation.verdicts) is None


def test_a_classifier_view_without_the_noise_floor_is_refused(tmp_path):
    f = Fakes(tmp_path)
    path = f.generation("ar", "base", "alpha1.0", "phase1", 0, fid=5.0)
    record = json.loads(path.read_text())
    del record["classifier"]["histogram_noise_floor"]
    path.write_text(json.dumps(record))
    with pytest.raises(KeyError, match="histogram_noise_floor.*rerun the eval_samples rule"):
        C.generation_run(path, "ar", "alpha1.0", "phase1", 0)


def run_with(fids, tmp_path, name):
    f = Fakes(tmp_path / name)
    return [
        C.generation_run(f.generation("ar", "base", name, "phase1", s, fid=fid), "ar", name, "phase1", s)
        for s, fid in enumerate(fids)
    ]


def test_fid_comparison_against_the_spread_over_sampling_seeds(tmp_path):
    a = run_with([10.0, 12.0], tmp_path, "a")  # mean 11, std 1.414
    b = run_with([7.0, 7.5], tmp_path, "b")  # mean 7.25, std 0.354
    c = run_with([9.0, 10.0], tmp_path, "c")  # mean 9.5
    ab = G.compare_fid("ar", a, b, 2.0)
    assert ab.difference == pytest.approx(-3.75) and ab.margin == pytest.approx(2 * 2**0.5)
    assert ab.outcome == V.LOWER and G.compare_fid("ar", b, a, 2.0).outcome == V.HIGHER
    assert G.compare_fid("ar", a, c, 2.0).outcome == V.WITHIN_SPREAD  # |-1.5| <= 2.83
    assert G.compare_fid("ar", a, b, 3.0).outcome == V.WITHIN_SPREAD  # 3.75 <= 4.24
    one = G.compare_fid("ar", a[:1], b[:1], 2.0)
    assert one.margin is None and one.outcome == V.SPREAD_UNKNOWN
    assert G.comparison_verdict([ab], V.LOWER) == V.HOLDS
    assert G.comparison_verdict([ab, G.compare_fid("ar", a, c, 2.0)], V.LOWER) == V.NOT_TESTABLE
    assert G.comparison_verdict([ab, G.compare_fid("ar", b, a, 2.0)], V.LOWER) == V.DOES_NOT_HOLD
    assert G.comparison_verdict([one], V.LOWER) == V.NOT_TESTABLE
    assert G.comparison_verdict([ab], V.HIGHER) == V.DOES_NOT_HOLD


def test_a_fid_comparison_names_its_objective_and_both_sample_sets(tmp_path):
    a, b = run_with([10.0, 12.0], tmp_path, "a"), run_with([7.0, 7.5], tmp_path, "b")
    ab = G.compare_fid("ar", a, b, 2.0)
    assert (ab.objective, ab.start, ab.end) == ("ar", "a phase1", "b phase1")


def test_a_generation_run_reads_its_record(tmp_path):
    f = Fakes(tmp_path)
    path = f.generation("ar", "base", "alpha0.5", "phase2", 3, fid=12.5, classifier=False, tokens="t9")
    assert G.generation_run(path, "ar", "alpha0.5", "phase2", 3) == G.GenerationRun(
        "ar", "alpha0.5", "phase2", 3, path, 12.5, None, None, None, None, "t9-ar-3"
    )
    record = json.loads(path.read_text())
    del record["samples"]
    path.write_text(json.dumps(record))
    assert G.generation_run(path, "ar", "alpha0.5", "phase2", 3).tokens_sha256 is None


def test_samples_exactly_at_the_recognisability_ratio_are_usable():
    """Step 1 of the generation rules: unusable when the confident fraction is BELOW ratio x the real
    images' (0.5 x here); exactly at it is usable, and the real images' fraction scales the threshold."""
    v = embedded_params().evaluation.verdicts
    ratio = v.recognisable_confidence_ratio

    def run(confident: float, reference: float) -> G.GenerationRun:
        return G.GenerationRun("ar", "a", "phase1", 0, Path("x.json"), 10.0, confident, reference, 0.0, 1.0, None)

    assert G.unusable_reason(run(ratio * 0.8, 0.8), v) is None
    assert G.unusable_reason(run(ratio, 0.5), v) is None  # 0.5 >= 0.5 x 0.5
    assert G.unusable_reason(run(ratio * 0.8 - 0.01, 0.8), v).startswith("confident fraction")
    both = dataclasses.replace(run(0.1, 0.8), histogram_tv=3 * v.histogram_tv_factor, histogram_floor=1.0)
    reasons = G.unusable_reason(both, v).split("; ")
    assert [r.split(" ")[0] for r in reasons] == ["confident", "class-histogram"]


def test_generation_differences_within_the_seed_spread_are_not_testable(tmp_path):
    # alpha steps of 0.5 FID and phase 2 better by 1.0, margin 1.414: unresolved
    claims, _ = claims_by_number(tmp_path, gen_fids=(30.0, 29.5, 0.0), p1_fid=29.0, p2_fid=28.0)
    assert claims[2].parts[1].verdict == V.NOT_TESTABLE and claims[2].verdict == V.NOT_TESTABLE
    assert claims[4].parts[0].verdict == V.NOT_TESTABLE and claims[1].parts[1].verdict == V.NOT_TESTABLE
    assert any(V.WITHIN_SPREAD in line for line in claims[2].parts[1].evidence)
    # the same alpha steps with a resolved rise: does not hold
    claims, _ = claims_by_number(tmp_path / "up", gen_fids=(30.0, 33.0, 0.0), p1_fid=29.0)
    assert claims[2].parts[1].verdict == V.DOES_NOT_HOLD
    # a wider fid_spread_factor makes resolved differences unresolved
    params = embedded_params(**{"evaluation.verdicts.fid_spread_factor": 10.0})
    claims, _ = claims_by_number(tmp_path / "wide", params=params, gen_fids=(30.0, 25.0, 0.0), p1_fid=20.0)
    assert claims[2].parts[1].verdict == V.NOT_TESTABLE and claims[4].parts[0].verdict == V.NOT_TESTABLE


def test_one_sampling_seed_gives_no_generation_verdict(tmp_path):
    params = embedded_params(**{"evaluation.sampling_seeds": [0]})
    claims, _ = claims_by_number(
        tmp_path, params=params, sampling_seeds=(0,), gen_fids=(30.0, 25.0, 0.0), p1_fid=20.0, p2_fid=10.0
    )
    for part in (claims[2].parts[1], claims[4].parts[0], claims[1].parts[1]):
        assert part.verdict == V.NOT_TESTABLE
        assert "spread over sampling seeds is unknown" in part.evidence[0]
    assert claims[2].parts[0].verdict == V.HOLDS  # the loss half does not depend on sampling seeds


def test_full_usage_holds_at_exactly_the_threshold():
    """ "At least ``full_usage``": the smallest usage equal to the threshold holds, just below fails."""
    from seqgan.report.verdicts.usage import full_usage_verdict

    assert full_usage_verdict([1.0, 0.95], 0.95) == V.HOLDS
    assert full_usage_verdict([1.0, 0.9499], 0.95) == V.DOES_NOT_HOLD


def test_claim3_usage_verdicts_and_the_entropy_ablation(tmp_path):
    claims, _ = claims_by_number(tmp_path, usage=0.995)
    usage_part, raise_part = claims[3].parts
    # the no-entropy control's low usage is the ablation, not a failure of "usage about 100 %"
    assert usage_part.verdict == V.HOLDS and raise_part.verdict == V.HOLDS and claims[3].verdict == V.HOLDS
    text = "\n".join(raise_part.evidence)
    assert "| 0 | 0.995 | 0.400 | 0.595 |" in text and "| 2 | 0.995 | 0.450 | 0.545 |" in text
    claims, _ = claims_by_number(tmp_path / "low", usage=0.6)
    assert claims[3].parts[0].verdict == V.DOES_NOT_HOLD and claims[3].verdict == V.DOES_NOT_HOLD
    # one collapsed codebook among healthy ones (alpha0.5, seed 1) is enough to fail "about 100 %"
    f = Fakes(tmp_path / "one")
    write_claim_inputs(f, usage=0.995)
    f.tokenizer("alpha0.5", 1, usage=0.3, psnr=17.5, rfid=12.0, mask_iou=0.85)
    claims = {c.number: c for c in C.evaluate_claims(embedded_params(), f.layout)}
    assert claims[3].parts[0].verdict == V.DOES_NOT_HOLD
    assert "Lowest usage with the regulariser: 0.3000." in claims[3].parts[0].evidence
    # the regulariser lowers usage in every seed / in one seed only
    claims, _ = claims_by_number(tmp_path / "lower", usage=0.6, no_entropy_usage=(0.7, 0.8, 0.65))
    assert claims[3].parts[1].verdict == V.DOES_NOT_HOLD
    claims, _ = claims_by_number(tmp_path / "mixed", usage=0.6, no_entropy_usage=(0.7, 0.5, 0.5))
    assert claims[3].parts[1].verdict == V.UNDECIDED
    # no control trained: not run, and its files are not inputs
    params = embedded_params(**{"tokenizer.control_no_entropy": False})
    claims, f = claims_by_number(tmp_path / "none", params=params, usage=0.995)
    assert claims[3].parts[1].verdict == V.NOT_RUN and claims[3].verdict == V.NOT_RUN
    assert not any("noentropy" in s for s in C.claims_inputs(params, f.layout))


def test_tokenizers_below_a_floor_are_flagged(tmp_path):
    claims, _ = claims_by_number(tmp_path, usage=0.995)
    assert not any("floor" in c for c in claims[2].caveats)
    params = embedded_params(**{"evaluation.verdicts.tokenizer_min_psnr": 17.2})
    claims, _ = claims_by_number(tmp_path / "psnr", params=params, usage=0.995)
    flagged = [c for c in claims[2].caveats if "floor" in c]
    # alpha1.0 (p1_psnr) and the control have PSNR 17.0, the other alphas 17.5: two flags per seed
    assert len(flagged) == 6 and all("PSNR 17.00 dB < " in c for c in flagged)
    assert sorted(c.split(": ")[1].split(" (")[0] for c in flagged) == sorted(
        f"{v} seed {s}" for v in ("alpha1.0", "control") for s in (0, 1, 2)
    )
    usage_text = "\n".join(claims[3].parts[0].evidence)
    assert "noentropy seed 0" not in usage_text  # usage 0.4 is above the 0.25 usage floor
    params = embedded_params(**{"evaluation.verdicts.tokenizer_min_usage": 0.42})
    claims, _ = claims_by_number(tmp_path / "usage", params=params, usage=0.995)
    usage_text = "\n".join(claims[3].parts[0].evidence)
    assert (
        "noentropy seed 0" in usage_text
        and "codebook usage 0.400 < evaluation.verdicts.tokenizer_min_usage 0.42" in usage_text
    )


def test_claims_1_and_4_on_the_phase2_decoder(tmp_path):
    # phase 2 on three seeds: better rFID and colour error in every seed, better FID in every sampling seed
    claims, _ = claims_by_number(tmp_path, p1_fid=20.0, p2_fid=18.0, p1_psnr=17.0, p2_psnr=18.0)
    assert claims[4].verdict == V.HOLDS
    assert claims[1].parts[0].verdict == V.HOLDS and claims[1].parts[1].verdict == V.DOES_NOT_HOLD
    assert claims[1].verdict == V.DOES_NOT_HOLD
    text = "\n".join(claims[4].parts[1].evidence)
    assert "- shape colour dE, phase 2 - phase 1 (lower is the claim): -4.800" in text  # 25 - 30, +0.2 per seed
    assert "| 1 | shape colour dE (ground truth) | 30.000 | 25.200 | -4.800 |" in text
    # phase 2 worse in FID and colour, yet higher PSNR: "restores colour" reads the colour error, not PSNR
    claims, _ = claims_by_number(tmp_path / "b", p1_fid=20.0, p2_fid=23.0, p1_psnr=17.0, p2_psnr=18.5, p2_colour=35.0)
    assert claims[4].parts[0].verdict == V.DOES_NOT_HOLD and claims[4].parts[1].verdict == V.DOES_NOT_HOLD
    assert claims[1].verdict == V.HOLDS
    # claim 1's "phase 2 improves rFID" reads the rFIDs: worse in every seed (10 -> 11.0 / 11.1 / 11.2)
    # does not hold, and with it the claim
    claims, _ = claims_by_number(tmp_path / "c", p1_rfid=10.0, p2_rfid=11.0)
    assert claims[1].parts[0].verdict == V.DOES_NOT_HOLD and claims[1].verdict == V.DOES_NOT_HOLD
    assert "| 1 | rFID | 10.000 | 11.100 | 1.100 |" in "\n".join(claims[1].parts[0].evidence)


def test_claims_1_and_4_draw_no_verdict_from_one_seed(tmp_path):
    params = embedded_params(**{"evaluation.experiment_seeds": [0]})
    claims, _ = claims_by_number(tmp_path, params=params, p1_fid=20.0, p2_fid=18.0)
    assert claims[1].parts[0].verdict == V.UNDECIDED  # rFID 10 -> 8 in the one seed: no interval
    assert claims[4].parts[1].verdict == V.UNDECIDED
    assert "(n = 1, no interval)" in "\n".join(claims[1].parts[0].evidence)


def test_combine_precedence():
    assert V.combine([V.HOLDS, V.NOT_TESTABLE, V.NOT_RUN]) == V.NOT_RUN
    assert V.combine([V.NOT_TESTABLE, V.DOES_NOT_HOLD]) == V.DOES_NOT_HOLD
    assert V.combine([V.HOLDS, V.NOT_TESTABLE]) == V.NOT_TESTABLE
    assert V.combine([V.HOLDS, V.HOLDS]) == V.HOLDS
    assert V.combine([V.HOLDS, V.UNDECIDED]) == V.UNDECIDED
    assert V.combine([V.UNDECIDED, V.NOT_TESTABLE]) == V.NOT_TESTABLE


def test_claims_cli_writes_rules_evidence_and_verdicts(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f, control_loss=3.3)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(embedded_params().raw, sort_keys=False))
    out = tmp_path / "claims.md"
    assert (
        cli.main(
            [
                "claims",
                "--params",
                str(params_file),
                "--results-dir",
                str(f.layout.results),
                "--models-dir",
                str(f.layout.models),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "## How verdicts are derived" in text and "paired per-seed differences with a 95%" in text
    v = embedded_params().evaluation.verdicts
    assert (
        f"histogram_tv_factor = {v.histogram_tv_factor}" in text
        and f"fid_spread_factor =\n{v.fid_spread_factor}" in text
    )
    assert f"<= {v.histogram_tv_factor} x `classifier.histogram_noise_floor.mean`" in text
    for number in (1, 2, 3, 4):
        assert f"## Claim {number}:" in text
    assert "| 2. A larger semantic ratio" in text and "**holds**" in text
    assert "below every alpha" in text
    assert "results/metrics/tokenizer/phase1/control/seed2.json" in text


# ----------------------------------------------------------------------------------------------
# The rules
# ----------------------------------------------------------------------------------------------


def test_rules_plan_the_tables_audit_and_claims_from_their_generation_inputs(tmp_path):
    """Dry run: the report rules resolve, and what they need is built by the generation rules."""
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(embedded_params().raw, sort_keys=False))
    targets = ["results/claims.md", "results/tables/table6_perceptual_layers.md", "results/tables/hparam_audit.md"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "-n",
            "--quiet",
            "rules",
            "--",
            *targets,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            jobs[parts[0]] = int(parts[1])
    assert jobs["claims"] == 1 and jobs["paper_table"] == 1 and jobs["hparam_audit"] == 1
    # 4 variants x 2 sampling seeds (phase-1 decoder) + 2 (phase-2 decoder), AR only
    assert jobs["eval_samples"] == 10 and jobs["tokenizer_phase2"] == 3  # phase 2 on every experiment seed


def test_usage_rules_are_decided_by_the_weakest_tokenizer_and_every_seed():
    from seqgan.report.verdicts.usage import full_usage_verdict, regulariser_verdict

    assert full_usage_verdict([0.99, 0.97, 0.96], 0.95) == V.HOLDS
    assert full_usage_verdict([0.99, 0.99, 0.30], 0.95) == V.DOES_NOT_HOLD  # one collapsed codebook fails it
    assert regulariser_verdict({0: 0.5, 1: 0.4}) == V.HOLDS
    assert regulariser_verdict({0: -0.1, 1: -0.2}) == V.DOES_NOT_HOLD
    assert regulariser_verdict({0: 0.5, 1: -0.2}) == V.UNDECIDED


def test_a_zero_usage_difference_is_neither_direction():
    """The regulariser's rule needs every seed's difference strictly positive (or strictly negative):
    a seed where it changed nothing leaves the verdict undecided."""
    from seqgan.report.verdicts.usage import regulariser_verdict

    assert regulariser_verdict({0: 0.0, 1: 0.5}) == V.UNDECIDED
    assert regulariser_verdict({0: 0.0, 1: -0.5}) == V.UNDECIDED


def test_decoder_comparison_pairs_only_seeds_measured_on_both_sides():
    """Claims 1 and 4: only seeds with both phases pair up; a metric not measured on either side of a
    paired seed makes the part not testable, with the metric and direction kept."""
    from seqgan.report.verdicts.decoder import DecoderComparison, compare_decoders

    untestable = DecoderComparison("rfid", "lower", None, V.NOT_TESTABLE)
    assert compare_decoders({0: None, 1: 10.0}, {0: 8.0, 1: 7.5}, "rfid", "lower", 0.95) == untestable
    assert compare_decoders({0: 10.0, 1: 9.0}, {0: 8.0, 1: None}, "rfid", "lower", 0.95) == untestable
    paired = compare_decoders({0: 10.0, 1: 9.0, 2: 11.0}, {0: 8.0, 1: 7.5}, "rfid", "lower", 0.95)
    assert paired.interval is not None and paired.interval.differences == {0: -2.0, 1: -1.5}
    assert paired.verdict == V.UNDECIDED  # two seeds: t_(0.975, 1) = 12.7 makes the interval cross 0
    assert (paired.metric, paired.wanted) == ("rfid", "lower")
    # a metric where higher is better: phase 2 higher in every seed, the interval above 0
    low, high = {0: 20.0, 1: 21.0, 2: 22.0}, {0: 25.0, 1: 26.5, 2: 27.0}
    assert compare_decoders(low, high, "psnr", "higher", 0.95).verdict == V.HOLDS
    assert compare_decoders(high, low, "psnr", "higher", 0.95).verdict == V.DOES_NOT_HOLD


def test_decoder_verdict_needs_every_seed_in_the_claimed_direction_and_the_interval_beyond_zero():
    """Small differences decide as well as large ones (the rule compares with 0, not 1); a seed with no
    change is not in the claimed direction even when the interval excludes 0; an interval across 0 is
    undecided whichever way its mean lies."""
    from seqgan.report.verdicts.decoder import compare_decoders

    def verdict(phase2: list[float], wanted: str, phase1: float = 1.0) -> str:
        before = dict.fromkeys(range(len(phase2)), phase1)
        return compare_decoders(before, dict(enumerate(phase2)), "m", wanted, 0.95).verdict

    assert verdict([0.8, 0.75, 0.85], "lower") == V.HOLDS  # -0.2 +- 0.124
    assert verdict([1.2, 1.25, 1.15], "higher") == V.HOLDS
    assert verdict([1.2, 1.25, 1.15], "lower") == V.DOES_NOT_HOLD
    assert verdict([0.8, 0.75, 0.85], "higher") == V.DOES_NOT_HOLD
    # nine seeds 10 lower, one unchanged: the interval (-9 +- 2.26) is below 0, but not every seed is
    assert verdict([10.0] * 9 + [20.0], "lower", phase1=20.0) == V.UNDECIDED
    # every seed higher (lower), the interval across 0 (1.1 +- 4.1): undecided either way
    assert verdict([1.1, 1.2, 4.0], "higher") == V.UNDECIDED
    assert verdict([0.9, 0.8, -2.0], "lower") == V.UNDECIDED
    assert verdict([1.1, 0.9, 1.05], "lower") == V.UNDECIDED  # 0.017 +- 0.26: small, across 0
    assert verdict([1.0, 1.0, 1.0], "lower") == V.UNDECIDED  # no change at all: the interval is exactly 0


def test_spread_describes_with_three_decimals_by_default():
    assert spread([1.0, 2.0, 4.0]).describe() == "2.333 +- 1.528 (min 1.000, max 4.000, n = 3)"
    assert spread([2.5]).describe() == "2.500 (n = 1, no spread)"


# ----------------------------------------------------------------------------------------------
# The power pilot
# ----------------------------------------------------------------------------------------------


def test_power_pilot_turns_the_pilot_seeds_paired_sd_into_a_seed_count(tmp_path):
    """Pilot seeds 100-102 with alpha1.0 - alpha0.0 = -0.2, -0.25, -0.15 (sd 0.05): the half-width
    0.05 needs n with t_(n-1) x 0.05 / sqrt(n) <= 0.05, first at n = 7; the 3 experiment seeds would
    give 4.303 x 0.05 / sqrt(3) = 0.124."""
    from seqgan.report.pilot import pilot_inputs, pilot_job

    f = Fakes(tmp_path)
    losses = {100: (4.2, 4.1, 4.0), 101: (4.3, 4.18, 4.05), 102: (4.25, 4.16, 4.1)}
    iou = {s: {"alpha0.0": 0.80, "alpha0.5": 0.82, "alpha1.0": 0.84} for s in losses}
    iou[101]["alpha1.0"] = 0.78
    write_claim_inputs(f, losses=losses, mask_iou=iou, no_entropy_usage={100: 0.4, 101: 0.5, 102: 0.45})
    params = embedded_params(**{"evaluation.pilot_seeds": [100, 101, 102]})
    inputs = pilot_inputs(params, f.layout)
    assert len(inputs) == 3 * 2 * 2 and all("seed10" in p for p in inputs)  # tokenizer + AR, two ends, 3 seeds
    out = tmp_path / "pilot" / "power.md"
    result = pilot_job(params, layout=f.layout, out=out)
    ar = result["objectives"]["ar"]
    assert ar["differences"] == pytest.approx({"100": -0.2, "101": -0.25, "102": -0.15})
    assert ar["paired_sd"] == pytest.approx(0.05) and ar["seeds_needed"] == 7
    assert ar["at_planned_seeds"]["half_width"] == pytest.approx(4.302653 * 0.05 / math.sqrt(3), rel=1e-5)
    assert ar["at_needed_seeds"]["half_width"] <= 0.05 < ar["at_planned_seeds"]["half_width"]
    # the manipulation fails in pilot seed 101 (alpha 1 keeps less of the shapes): said before the run
    assert result["manipulation"]["passes"] is False
    assert "seed 101 -0.0200" in out.read_text() and "**fails**" in out.read_text()
    assert json.loads(out.with_suffix(".json").read_text()) == result
    # pilot seeds must be disjoint from the confirmatory seeds (which include the experiment seeds)
    with pytest.raises(ParamsError, match="shares \\[0\\] with evaluation.confirmatory_seeds"):
        embedded_params(**{"evaluation.pilot_seeds": [0, 100]})
    # one alpha: nothing to compare, so no inputs and a job that says why (and writes nothing)
    single = embedded_params(
        **{"evaluation.pilot_seeds": [100, 101, 102], "tokenizer.alphas": [0.5], "tokenizer.phase2.from_alpha": 0.5}
    )
    assert pilot_inputs(single, f.layout) == []
    lone = tmp_path / "lone" / "power.md"
    with pytest.raises(SystemExit, match=r"tokenizer.alphas = \[0.5\]: the pilot needs two alphas"):
        pilot_job(single, layout=f.layout, out=lone)
    assert not lone.exists() and not lone.with_suffix(".json").exists()


def test_capacity_check_of_the_smallest_alpha_uses_a_colour_floor_derived_from_the_data(tmp_path):
    """alpha0.0 at 17.5 dB and colour delta E 30 (the fakes): below 20 dB and above the hue step; at
    21 dB and delta E 10 in every seed it passes."""
    from seqgan.report.floors import hue_step_delta_e

    params = embedded_params()
    step = hue_step_delta_e(params)
    assert 14.0 < step < 16.0  # a 30 degree hue rotation of this generator's colours, median
    assert hue_step_delta_e(embedded_params(**{"evaluation.verdicts.capacity_hue_step_degrees": 60.0})) > 2 * 14.0
    claims, f = claims_by_number(tmp_path)
    text = "\n".join(claims[2].parts[0].evidence)
    assert "**Capacity check**" in text and "fails (alpha0.0 seed 0: PSNR 17.50 dB < 20.0" in text
    assert f"alpha0.0 seed 2: shape colour delta E 30.0 >= {step:.1f}" in text
    assert any(c.startswith("capacity check fails") for c in claims[2].caveats)
    for seed in (0, 1, 2):
        record = json.loads(f.layout.tokenizer_metrics("alpha0.0", seed).read_text())
        record["psnr"], record["instrument"]["reconstructed"]["shape_colour_delta_e"] = 21.0, 10.0
        f._write(f.layout.tokenizer_metrics("alpha0.0", seed), record)
    claims = {c.number: c for c in C.evaluate_claims(params, f.layout)}
    assert "in every seed: passes" in "\n".join(claims[2].parts[0].evidence)
    assert not any(c.startswith("capacity check fails") for c in claims[2].caveats)
