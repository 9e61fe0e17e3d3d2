"""The params.yaml contract: every error path names the key and value; the paper configs hold the paper's values."""

from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from seqgan import cli
from seqgan.config import (
    Params,
    ParamsError,
    load_params,
    load_schema,
    lookup,
    no_entropy_alpha,
    validate_params,
    without_entropy_regulariser,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG_NAMES = ["imagenet", "ffhq", "lsun_cat", "lsun_bedroom", "lsun_church"]


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ParamsError) as info:
        validate_params(raw, "test.yaml")
    assert "test.yaml" in str(info.value)
    return info.value.problems


def test_default_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.tokenizer.architecture.compression == 4
    assert params.tokenizer.alphas == (0.0, 0.5, 1.0)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_paper_configs_validate(name):
    params = load_params(ROOT / "configs" / f"{name}.yaml")
    assert params.run.name == name
    assert params.data.resolution == 256
    assert params.tokenizer.architecture.compression == 16  # 256 px -> 16x16 tokens


def test_example_message_from_the_issue(raw):
    raw["tokenizer"]["alphas"][2] = 1.5
    assert problems_of(raw) == ["tokenizer.alphas[2] = 1.5: must be within [0, 1]"]


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("run.device", "gpu", 'run.device = "gpu": must be one of auto, cpu, cuda'),
        ("run.seed", -1, "run.seed = -1: must be >= 0"),
        ("run.name", "a b", 'run.name = "a b": must match'),
        ("data.resolution", 8, "data.resolution = 8: must be within [16, 1024]"),
        ("semantic.widths", [8, 8, 8], "semantic.widths = [8, 8, 8]: must have at least 5 item(s)"),
        ("tokenizer.alphas", [0.5, 0.5], "tokenizer.alphas = [0.5, 0.5]: must not contain duplicates"),
        ("tokenizer.gan.loss", "wgan", 'tokenizer.gan.loss = "wgan": must be one of non_saturating, hinge'),
        ("transformer.ar.top_p", 0.0, "transformer.ar.top_p = 0.0: must be within (0, 1]"),
        ("transformer.sizes.base.dropout", 1.0, "transformer.sizes.base.dropout = 1.0: must be within [0, 1)"),
        ("tokenizer.control_no_perceptual", "yes", 'tokenizer.control_no_perceptual = "yes": must be of type boolean'),
        ("semantic.iterations", 10.5, "semantic.iterations = 10.5: must be of type integer"),
        ("semantic.iterations", True, "semantic.iterations = true: must be of type integer"),
        # floors that no measurement can be below
        (
            "evaluation.verdicts.tokenizer_min_psnr",
            -5.0,
            "evaluation.verdicts.tokenizer_min_psnr = -5.0: must be >= 0",
        ),
        ("evaluation.verdicts.capacity_min_psnr", -1, "evaluation.verdicts.capacity_min_psnr = -1: must be >= 0"),
    ],
)
def test_bad_values_name_key_and_value(raw, path, value, expected):
    *parents, leaf = path.split(".")
    lookup(raw, ".".join(parents))[leaf] = value
    problems = problems_of(raw)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_yaml_exponent_without_dot_gets_a_hint(tmp_path, raw):
    text = (ROOT / "params.yaml").read_text().replace("  optimizer:\n    lr: 0.001\n", "  optimizer:\n    lr: 1e-3\n")
    assert text != (ROOT / "params.yaml").read_text()
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ParamsError) as info:
        load_params(tmp_path / "p.yaml")
    (problem,) = info.value.problems
    assert problem.startswith('transformer.optimizer.lr = "1e-3": must be of type number')
    assert "1.0e-4" in problem


def test_missing_keys_are_named(raw):
    del raw["tokenizer"]["phase2"]["attention"]["dilation"]
    del raw["evaluation"]
    assert problems_of(raw) == [
        "evaluation: missing key",
        "tokenizer.phase2.attention.dilation: missing key",
    ]


def test_unknown_key_suggests_the_close_match(raw):
    raw["tokenizer"]["alpahs"] = [1.0]
    raw["transformer"]["ar"]["nucleus"] = 0.9
    problems = problems_of(raw)
    assert "tokenizer.alpahs = [1.0]: unknown key; did you mean 'alphas'?" in problems
    (nucleus,) = [p for p in problems if p.startswith("transformer.ar.nucleus")]
    assert "unknown key; allowed keys: batch_size" in nucleus


def test_all_problems_reported_together(raw):
    raw["run"]["device"] = "tpu"
    raw["data"]["resolution"] = 5000
    del raw["semantic"]["lr"]
    assert len(problems_of(raw)) == 3


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda r: r["data"].update(resolution=34),
            "data.resolution = 34: must be a multiple of the tokenizer's compression 4",
        ),
        (
            lambda r: r["tokenizer"]["architecture"].update(num_groups=24),
            "tokenizer.architecture.num_groups = 24: must divide",
        ),
        (
            lambda r: r["tokenizer"]["phase2"]["attention"].update(heads=5),
            "tokenizer.phase2.attention.heads = 5: must divide",
        ),
        (
            lambda r: r["tokenizer"]["phase2"].update(from_alpha=0.25),
            "tokenizer.phase2.from_alpha = 0.25: must be one of tokenizer.alphas",
        ),
        (
            lambda r: r["transformer"]["sizes"]["large"].update(heads=5),
            "transformer.sizes.large.heads = 5: must divide",
        ),
        (lambda r: r["transformer"]["ar"].update(top_k=100000), "transformer.ar.top_k = 100000: must not exceed"),
        (
            lambda r: r["transformer"].update(conditional=True, num_classes=7),
            "transformer.num_classes = 7: must equal data.synthetic.num_classes = 10",
        ),
        (
            lambda r: (
                r["transformer"].update(conditional=True, num_classes=1),
                r["data"].update(source="folder"),
                r["data"]["folder"].update(train_dir="raw"),
            ),
            "transformer.num_classes = 1: a conditional model needs >= 2 classes",
        ),
        (lambda r: r["data"].update(source="folder"), "data.folder.train_dir = '': required when data.source = folder"),
        (
            lambda r: r["semantic"].update(backbone="vgg16"),
            "evaluation.fid_network = judge: needs semantic.backbone = embedded",
        ),
        (
            lambda r: r["tokenizer"]["quantizer"].update(entropy_weight=0.0),
            "tokenizer.control_no_entropy = true: needs tokenizer.quantizer.entropy_weight > 0",
        ),
        (
            lambda r: r["semantic"].update(warmup_steps=600),  # caught here, not after the data is prepared
            "semantic.warmup_steps = 600: must be below semantic.iterations = 600",
        ),
        (lambda r: r["judge"].update(warmup_steps=900), "judge.warmup_steps = 900: must be below judge.iterations"),
        (
            lambda r: r["tokenizer"]["loss"].update(logit_weight=0.002),
            "tokenizer.loss.logit_weight = 0.002: not used when tokenizer.loss.calibration = initial_mean",
        ),
    ],
)
def test_cross_field_rules(raw, mutate, expected):
    mutate(raw)
    problems = problems_of(raw)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_the_no_entropy_control_differs_from_its_alpha_in_the_entropy_weight_only(raw):
    raw["tokenizer"]["alphas"] = [0.5, 1.0]
    raw["tokenizer"]["phase2"]["from_alpha"] = 1.0
    params = validate_params(raw, "test.yaml")
    assert no_entropy_alpha(params) == 0.5
    control = without_entropy_regulariser(params)
    assert control.tokenizer.quantizer.entropy_weight == 0.0 and not control.tokenizer.control_no_entropy
    changed = copy.deepcopy(control.raw)
    changed["tokenizer"]["quantizer"]["entropy_weight"] = raw["tokenizer"]["quantizer"]["entropy_weight"]
    changed["tokenizer"]["control_no_entropy"] = True
    assert changed == params.raw
    raw["tokenizer"]["control_no_entropy"] = False
    with pytest.raises(ParamsError, match="control_no_entropy is false"):
        without_entropy_regulariser(validate_params(raw, "test.yaml"))


def test_non_mapping_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="top level must be a mapping"):
        validate_params([1, 2])
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("run: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def _schema_tree(node: dict, defs: dict) -> dict | None:
    if "$ref" in node:
        node = defs[node["$ref"].split("/")[-1]]
    if node.get("type") != "object":
        return None
    return {k: _schema_tree(v, defs) for k, v in node["properties"].items()}


def _dataclass_tree(cls: type) -> dict | None:
    if not dataclasses.is_dataclass(cls):
        return None
    hints = typing.get_type_hints(cls)
    return {f.name: _dataclass_tree(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "raw"}


def test_typed_view_mirrors_the_schema_exactly():
    schema = load_schema()
    assert _dataclass_tree(Params) == _schema_tree(schema, schema["$defs"])


def test_schema_has_no_defaults():
    def walk(node):
        if isinstance(node, dict):
            assert "default" not in node, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema())


def test_snakemake_validates_against_the_same_schema(raw):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema_link = ROOT / "workflow" / "schemas" / "params.schema.yaml"
    assert schema_link.resolve() == (ROOT / "seqgan" / "schema" / "params.schema.yaml").resolve()
    validate(copy.deepcopy(raw), str(schema_link))
    raw["tokenizer"]["alphas"][0] = -0.5
    with pytest.raises(WorkflowError):
        validate(raw, str(schema_link))


def test_section_hash_changes_only_with_its_section(raw):
    a = validate_params(copy.deepcopy(raw))
    raw["transformer"]["optimizer"]["lr"] = 0.002
    b = validate_params(raw)
    assert a.section_hash("data", "tokenizer") == b.section_hash("data", "tokenizer")
    assert a.section_hash("transformer.optimizer") != b.section_hash("transformer.optimizer")


# Paper values (supplement Tables 1-4, main paper) that each config must carry.
PAPER_VALUES = {
    "imagenet": {
        "tokenizer.phase1.batch_size": 256,
        "tokenizer.phase1.iterations": 500000,
        "tokenizer.phase1.lr": 1e-4,
        "tokenizer.phase1.end_lr": 5e-5,
        "tokenizer.phase1.lr_decay": "cosine",
        "tokenizer.phase2.batch_size": 128,
        "transformer.ar.batch_size": 256,
        "transformer.ar.iterations": 1500000,
        "transformer.ar.top_p": 0.92,
        "transformer.nar.temperature": 0.45,
        "transformer.conditional": True,
        "transformer.num_classes": 1000,
    },
    "ffhq": {
        "tokenizer.phase1.batch_size": 64,
        "tokenizer.phase1.iterations": 300000,
        "tokenizer.phase2.batch_size": 32,
        "transformer.ar.batch_size": 32,
        "transformer.ar.iterations": 500000,
        "transformer.nar.temperature": 0.65,
    },
    "lsun_cat": {
        "tokenizer.phase1.batch_size": 64,
        "tokenizer.phase1.iterations": 26000,
        "tokenizer.phase1.lr": 5e-5,
        "tokenizer.phase2.batch_size": 64,
        "transformer.ar.batch_size": 256,
        "transformer.ar.top_p": 0.98,
    },
    "lsun_bedroom": {
        "tokenizer.phase1.batch_size": 64,
        "tokenizer.phase1.iterations": 48000,
        "tokenizer.phase2.batch_size": 64,
        "transformer.nar.batch_size": 256,
    },
    "lsun_church": {
        "tokenizer.phase1.batch_size": 32,
        "tokenizer.phase1.iterations": 4000,
        "tokenizer.phase2.batch_size": 32,
        "transformer.ar.batch_size": 64,
    },
}
COMMON_PAPER_VALUES = {
    "tokenizer.architecture.base_channels": 128,
    "tokenizer.architecture.channel_mult": [1, 1, 2, 2, 4],
    "tokenizer.architecture.codebook_size": 1024,
    "tokenizer.architecture.code_dim": 256,
    "tokenizer.quantizer.beta": 0.25,
    "tokenizer.quantizer.entropy_weight": 0.01,
    "tokenizer.phase1.beta1": 0.9,
    "tokenizer.phase1.beta2": 0.99,
    "tokenizer.phase2.iterations": 200000,
    "tokenizer.phase2.lr": 5e-5,
    "tokenizer.phase2.beta1": 0.5,
    "tokenizer.phase2.beta2": 0.9,
    "tokenizer.phase2.from_alpha": 1.0,
    "tokenizer.phase2.alpha": 0.0,
    "transformer.sizes.base": {"layers": 24, "heads": 16, "dim": 768, "mlp_dim": 3072, "dropout": 0.1},
    "transformer.sizes.large": {"layers": 24, "heads": 16, "dim": 1024, "mlp_dim": 4096, "dropout": 0.1},
    "transformer.optimizer": {"lr": 1e-4, "beta1": 0.9, "beta2": 0.96, "weight_decay": 0.01},
    "transformer.ar.end_lr": 5e-6,
    "transformer.ar.decay_start": 80000,
    "transformer.ar.lr_decay": "exponential",
    "transformer.nar.end_lr": 0.0,
    "transformer.nar.decay_start": 50000,
    "transformer.nar.lr_decay": "linear",
    "transformer.nar.steps": 12,
    "semantic.backbone": "vgg16",
    "evaluation.fid_network": "inception",
}


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_paper_configs_carry_the_paper_values(name):
    raw = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    for key, expected in {**COMMON_PAPER_VALUES, **PAPER_VALUES[name]}.items():
        assert lookup(raw, key) == expected, f"configs/{name}.yaml {key}"


def test_use_config_switches_params_and_keeps_a_backup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    for name in ("ffhq",):
        (tmp_path / "configs" / f"{name}.yaml").write_bytes((ROOT / "configs" / f"{name}.yaml").read_bytes())
    original = (ROOT / "params.yaml").read_bytes()
    (tmp_path / "params.yaml").write_bytes(original)
    assert cli.main(["use-config", "ffhq"]) == 0
    assert load_params("params.yaml").run.name == "ffhq"
    assert (tmp_path / "params.yaml.bak").read_bytes() == original
    with pytest.raises(SystemExit, match="available: ffhq"):
        cli.main(["use-config", "imagenet"])


def test_use_config_embedded_restores_the_default(tmp_path, monkeypatch):
    """The way back from a paper configuration: configs/embedded.yaml is the committed params.yaml."""
    assert (ROOT / "configs" / "embedded.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes(), (
        "configs/embedded.yaml must equal params.yaml (the embedded default): copy params.yaml over it"
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    for name in ("embedded", "ffhq"):
        (tmp_path / "configs" / f"{name}.yaml").write_bytes((ROOT / "configs" / f"{name}.yaml").read_bytes())
    (tmp_path / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    dvc_yaml = (ROOT / "dvc.yaml").read_bytes()
    assert cli.main(["use-config", "ffhq"]) == 0
    assert (tmp_path / "dvc.yaml").read_bytes() != dvc_yaml
    assert cli.main(["use-config", "embedded"]) == 0
    assert (tmp_path / "params.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes()
    assert (tmp_path / "dvc.yaml").read_bytes() == dvc_yaml  # the default's stages again
