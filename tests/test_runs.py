"""seqgan/runs.py, the one declaration of what makes each run, and the layers it relies on.

* Every workflow rule has a declaration, and every declared key exists in every params file.
* A declaration's modules are exactly what its job can import (statically, lazy imports too) minus
  the files that shape no output: a module reruns a rule because the declaration lists it, and the
  list cannot silently miss one.
* Imports only run downward through the layers (config / artefacts -> data / nets -> losses ->
  train -> sample -> evaluate -> report -> cli), so a training rule never lists evaluation code.
* What a key or module reruns, per rule: sampling keys rerun no training, a size's width reruns no
  other size, `evaluate/fid.py` no training or encoding job, `sample/*.py` no training job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from import_graph import ROOT, closure, imports_of

from seqgan.config import lookup
from seqgan.runs import (
    DECLARATIONS,
    SAMPLING_KEYS,
    SHAPES_NO_OUTPUT,
    lineage_keys,
    run_keys,
    run_values,
)

# configs/embedded.yaml is params.yaml (tests/test_config.py keeps them equal): planned once
PARAMS_FILES = [ROOT / "params.yaml", *sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.stem != "embedded")]
DATA_FILES = {"seqgan/report/paper_reference.yaml"}

# Lowest first; a module may import its own layer or a lower one.
LAYERS: list[tuple[str, ...]] = [
    ("seqgan/config.py", "seqgan/runs.py", "seqgan/progress.py", "seqgan/artefacts/"),
    ("seqgan/data/", "seqgan/nets/"),
    ("seqgan/losses/",),
    ("seqgan/train/",),
    ("seqgan/sample/",),
    ("seqgan/evaluate/",),
    ("seqgan/report/",),
    (
        "seqgan/cli.py",
        "seqgan/__main__.py",
        "seqgan/configs.py",
        "seqgan/new_config.py",
        "seqgan/dvc_yaml.py",
        "seqgan/dvc_realign.py",
        "seqgan/preflight.py",
        "seqgan/models.py",
        "seqgan/__init__.py",
    ),
]
TRAINING = {"train_semantic", "tokenizer_phase1", "tokenizer_phase2", "train_ar", "train_nar"}


def layer_of(path: str) -> int:
    for level, prefixes in enumerate(LAYERS):
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes):
            return level
    raise AssertionError(f"{path} belongs to no layer: add it to LAYERS in tests/test_runs.py")


def package_files() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "seqgan").rglob("*.py"))


def workflow_rules() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"^rule (\w+):", text, re.M)) | set(re.findall(r"^use rule \w+ as (\w+)", text, re.M))


def test_every_import_runs_downward():
    upward = []
    for path in package_files():
        for target in imports_of(Path(path)):
            if layer_of(target) > layer_of(path):
                upward.append(f"{path} imports {target}")
    assert upward == []


def test_the_layer_check_catches_an_upward_import():
    assert layer_of("seqgan/report/fig2.py") > layer_of("seqgan/train/loop.py")
    assert layer_of("seqgan/artefacts/tokens.py") < layer_of("seqgan/data/synthetic.py")


def test_every_rule_is_declared():
    assert workflow_rules() - {"all"} == set(DECLARATIONS)


@pytest.mark.parametrize("rule", sorted(DECLARATIONS))
def test_declared_modules_are_exactly_what_the_job_imports(rule):
    d = DECLARATIONS[rule]
    reachable = closure(d.job) - set(SHAPES_NO_OUTPUT)
    declared = set(d.modules) - DATA_FILES
    assert d.job in d.modules
    assert sorted(reachable - declared) == [], f"{rule}: imported but not declared (add to seqgan/runs.py)"
    assert sorted(declared - reachable) == [], f"{rule}: declared but never imported (remove from seqgan/runs.py)"
    assert all((ROOT / m).is_file() for m in d.modules)


def test_files_said_to_shape_no_output_exist_and_shape_none():
    assert all((ROOT / f).is_file() for f in SHAPES_NO_OUTPUT)
    listed = {m for d in DECLARATIONS.values() for m in d.modules}
    assert listed.isdisjoint(SHAPES_NO_OUTPUT)
    # The CLI only parses and dispatches: every command calls one job function, defined elsewhere.
    cli = (ROOT / "seqgan" / "cli.py").read_text()
    assert "def resume_path" not in cli and "run_key" not in cli and "atomic_write" not in cli


def _wildcards(rule: str, raw: dict) -> list[dict[str, str]]:
    """Representative wildcards of a rule's jobs under ``raw``."""
    variants = [f"alpha{a}" for a in raw["tokenizer"]["alphas"]] + ["control", "noentropy"]
    if rule == "tokenizer_phase1":
        return [{"variant": v, "seed": "0"} for v in variants]
    if rule in ("train_ar", "train_nar"):
        return [{"size": s, "variant": variants[0], "seed": "0"} for s in ("base", "large")]
    if rule in ("sample", "eval_samples", "sample_grid"):
        return [
            {"objective": o, "size": "base", "variant": variants[0], "decoder": "phase1", "seed": "0"}
            for o in ("ar", "nar")
        ]
    return [{}]


@pytest.mark.parametrize("params_file", PARAMS_FILES, ids=lambda p: p.name)
def test_every_declared_key_exists_in_every_params_file(params_file):
    raw = yaml.safe_load(params_file.read_text())
    for rule in DECLARATIONS:
        for wildcards in _wildcards(rule, raw):
            for key in run_keys(rule, raw, wildcards):
                lookup(raw, key)  # KeyError names the key
    for kind in ("tokenizer_phase1", "tokenizer_phase2", "transformer", "generation"):
        assert lineage_keys(kind, raw)


def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_training_declares_no_sampling_key_and_only_its_own_size():
    raw = raw_params()
    sampling = {k for keys in SAMPLING_KEYS.values() for k in keys} - {"transformer.nar.mask_schedule"}
    for rule in TRAINING:
        for wildcards in _wildcards(rule, raw):
            assert sampling.isdisjoint(run_keys(rule, raw, wildcards)), rule
    base = run_keys("train_ar", raw, {"size": "base"})
    assert "transformer.sizes.base" in base and "transformer.sizes.large" not in base
    assert "transformer.checkpoint_every" not in base  # resume cadence shapes no output
    assert "transformer.nar.mask_schedule" in run_keys("train_nar", raw, {"size": "base"})  # NAR trains with it
    assert set(SAMPLING_KEYS["ar"]) <= set(run_keys("sample", raw, {"objective": "ar"}))
    assert set(SAMPLING_KEYS["nar"]).isdisjoint(run_keys("sample", raw, {"objective": "ar"}))


def test_gates_rerun_the_check_but_are_no_part_of_the_run_identity():
    raw = raw_params()
    assert "semantic.min_val_accuracy" in run_keys("train_semantic", raw)
    assert "semantic.min_val_accuracy" not in run_values("train_semantic", raw, gates=False)
    changed = yaml.safe_load(yaml.safe_dump(raw))
    changed["semantic"]["min_val_accuracy"] = 0.5
    assert run_values("train_semantic", changed, gates=False) == run_values("train_semantic", raw, gates=False)
    changed["semantic"]["lr"] = 0.001
    assert run_values("train_semantic", changed, gates=False) != run_values("train_semantic", raw, gates=False)


EXECUTION_SETTINGS = {"run.device": "cuda", "run.gpus_per_job": 8, "run.accumulation_steps": 4, "run.compile": True}


def test_execution_settings_shape_no_run_and_rerun_nothing():
    """Where and how a job runs (device, GPUs, micro-batches, compile) changes float rounding, not
    the computation: no rule declares them, so changing them reruns nothing (the sidecars record
    them). A declared key changes the identity, so the comparison can fail."""
    raw = raw_params()
    changed = yaml.safe_load(yaml.safe_dump(raw))
    for key, value in EXECUTION_SETTINGS.items():
        section, name = key.split(".")
        assert name in changed[section], key  # a real params key, not a typo
        changed[section][name] = value
    for rule in DECLARATIONS:
        for wildcards in _wildcards(rule, raw):
            assert set(EXECUTION_SETTINGS).isdisjoint(run_keys(rule, raw, wildcards)), rule
            assert run_values(rule, changed, wildcards) == run_values(rule, raw, wildcards), rule
    changed["transformer"]["optimizer"]["lr"] = 0.5
    assert run_values("train_ar", changed, {"size": "base"}) != run_values("train_ar", raw, {"size": "base"})


def test_the_control_tokenizer_does_not_depend_on_the_semantic_backbone():
    raw = raw_params()
    assert "semantic.backbone" in run_keys("tokenizer_phase1", raw, {"variant": "alpha0.5"})
    assert "semantic.backbone" not in run_keys("tokenizer_phase1", raw, {"variant": "control"})
    assert "tokenizer.alphas" in run_keys("tokenizer_phase1", raw, {"variant": "noentropy"})
    assert "tokenizer.alphas" not in run_keys("tokenizer_phase1", raw, {"variant": "alpha0.5"})


def rules_listing(module: str) -> set[str]:
    return {rule for rule, d in DECLARATIONS.items() if module in d.modules}


def test_evaluation_and_sampling_code_reruns_no_training():
    assert rules_listing("seqgan/evaluate/fid.py") & (TRAINING | {"encode_tokens"}) == set()
    for path in package_files():
        if path.startswith(("seqgan/sample/", "seqgan/evaluate/", "seqgan/report/")):
            assert rules_listing(path) & TRAINING == set(), path
    assert rules_listing("seqgan/train/transformer.py") >= {"train_ar", "train_nar"}
    assert "seqgan/nets/discriminator.py" not in DECLARATIONS["train_ar"].modules
    assert "seqgan/losses/perceptual.py" not in DECLARATIONS["train_ar"].modules
