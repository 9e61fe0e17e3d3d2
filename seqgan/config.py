"""Typed, validated access to params.yaml.

params.yaml is the only place parameter values live. It is checked in two layers before any work:
1. the JSON schema (seqgan/schema/params.schema.yaml; Snakemake validates against the same file):
   types, ranges, enums, required and unknown keys;
2. cross-field rules the schema cannot express (the resolution must be a multiple of the
   tokenizer's compression, the phase-2 source alpha must be in the sweep, ...).
Every problem becomes one line naming the key path and the value, e.g.
``tokenizer.alphas[2] = 1.5: must be within [0, 1]``; all lines are raised together in one
:class:`ParamsError`, so a user fixes a file in one pass.

The dataclasses below mirror the schema field for field (a test keeps them in step). They carry
no defaults: a value missing from the file is an error, never a silent fallback.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("schema") / "params.schema.yaml"


class ParamsError(ValueError):
    """params.yaml (or a configs/ file) is invalid; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid parameters in {source}:\n{lines}")


# --------------------------------------------------------------------------------------------
# Typed view. Field names and nesting equal the schema's properties.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunParams:
    name: str
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    gpus_per_job: int
    accumulation_steps: int
    compile: bool


@dataclass(frozen=True)
class SyntheticDataParams:
    num_classes: int
    train_images: int
    val_images: int
    seed: int


@dataclass(frozen=True)
class FolderDataParams:
    train_dir: str
    val_dir: str
    layout: Literal["classes", "flat"]
    val_holdout_fraction: float
    max_image_pixels: int
    small_images: Literal["upscale", "skip"]
    workers: int


@dataclass(frozen=True)
class DataParams:
    name: str
    source: Literal["synthetic", "folder", "lsun_lmdb"]
    resolution: int
    synthetic: SyntheticDataParams
    folder: FolderDataParams


@dataclass(frozen=True)
class SemanticParams:
    backbone: Literal["embedded", "vgg16"]
    widths: tuple[int, ...]
    iterations: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    hflip: bool
    eval_every: int
    checkpoint_every: int
    min_val_accuracy: float


@dataclass(frozen=True)
class JudgeParams:
    widths: tuple[int, ...]
    iterations: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    seed: int
    eval_every: int
    checkpoint_every: int
    min_val_accuracy: float


@dataclass(frozen=True)
class ArchitectureParams:
    base_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    extra_res_blocks: int
    num_groups: int
    codebook_size: int
    code_dim: int

    @property
    def compression(self) -> int:
        """Spatial down-sampling factor f (one 2x pool between consecutive levels)."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def level_channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)


@dataclass(frozen=True)
class QuantizerParams:
    beta: float
    entropy_weight: float
    entropy_temperature: float
    init: Literal["uniform", "encoder_samples"]
    codebook_lr_scale: float


@dataclass(frozen=True)
class TokenizerLossParams:
    l1_weight: float
    perceptual_weight: float
    calibration: Literal["initial_mean", "none"]
    logit_weight: float | None = None  # only with calibration = none (the paper's lambda)


@dataclass(frozen=True)
class GanParams:
    weight: float
    adaptive_weight: bool
    loss: Literal["non_saturating", "hinge"]
    r1_gamma: float
    start_step: int
    disc_channels: int


@dataclass(frozen=True)
class Phase1Params:
    init_from: str
    init_images: int
    batch_size: int
    iterations: int
    lr: float
    end_lr: float
    lr_decay: Literal["cosine", "constant"]
    beta1: float
    beta2: float
    checkpoint_every: int
    log_every: int
    val_every: int
    val_images: int


@dataclass(frozen=True)
class AttentionParams:
    block_size: int
    dilation: int
    heads: int


@dataclass(frozen=True)
class Phase2Params:
    from_alpha: float
    alpha: float
    batch_size: int
    iterations: int
    lr: float
    end_lr: float
    lr_decay: Literal["cosine", "constant"]
    beta1: float
    beta2: float
    checkpoint_every: int
    log_every: int
    val_every: int
    val_images: int
    attention: AttentionParams


@dataclass(frozen=True)
class TokenizerParams:
    architecture: ArchitectureParams
    quantizer: QuantizerParams
    loss: TokenizerLossParams
    alphas: tuple[float, ...]
    control_no_perceptual: bool
    control_no_entropy: bool
    gan: GanParams
    phase1: Phase1Params
    phase2: Phase2Params


@dataclass(frozen=True)
class TransformerSizeParams:
    layers: int
    heads: int
    dim: int
    mlp_dim: int
    dropout: float


@dataclass(frozen=True)
class TransformerSizesParams:
    base: TransformerSizeParams
    large: TransformerSizeParams


@dataclass(frozen=True)
class OptimizerParams:
    lr: float
    beta1: float
    beta2: float
    weight_decay: float


@dataclass(frozen=True)
class ArParams:
    batch_size: int
    iterations: int
    lr_decay: Literal["exponential", "linear", "constant"]
    end_lr: float
    decay_start: int
    top_p: float
    top_k: int
    temperature: float


@dataclass(frozen=True)
class NarParams:
    batch_size: int
    iterations: int
    lr_decay: Literal["exponential", "linear", "constant"]
    end_lr: float
    decay_start: int
    steps: int
    temperature: float
    mask_schedule: Literal["cosine", "linear"]


@dataclass(frozen=True)
class TransformerParams:
    objectives: tuple[str, ...]
    conditional: bool
    num_classes: int
    models: tuple[str, ...]
    sizes: TransformerSizesParams
    optimizer: OptimizerParams
    eval_every: int
    val_batches: int
    checkpoint_every: int
    ar: ArParams
    nar: NarParams


@dataclass(frozen=True)
class SampleGridParams:
    classes: tuple[int, ...]
    columns: int
    rows: int


@dataclass(frozen=True)
class VerdictParams:
    """Metric definitions and verdict thresholds (evaluation.verdicts; meanings in the schema)."""

    confident_probability: float
    inception_score_splits: int
    histogram_noise_draws: int
    recognisable_confidence_ratio: float
    histogram_tv_factor: float
    fid_spread_factor: float
    full_usage: float
    interval_confidence: float
    tokenizer_min_psnr: float
    tokenizer_min_usage: float
    capacity_min_psnr: float
    capacity_hue_step_degrees: float
    reference_false_alarm: float
    power: float
    target_half_width: float
    manipulation_min_difference: float


@dataclass(frozen=True)
class ConvergenceParams:
    """The plateau rule and the endpoint of validation curves (evaluation.convergence; meanings in the
    schema and seqgan/report/convergence.py)."""

    plateau_window: float
    plateau_max_improvement: float
    endpoint_evaluations: int


@dataclass(frozen=True)
class EvaluationParams:
    fid_network: Literal["judge", "semantic", "inception"]
    num_samples: int
    batch_size: int
    sampling_seeds: tuple[int, ...]
    experiment_seeds: tuple[int, ...]
    confirmatory_seeds: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    generation_reference: Literal["train", "val"]
    visualization_images: int
    sample_grid: SampleGridParams
    convergence: ConvergenceParams
    verdicts: VerdictParams


@dataclass(frozen=True)
class Params:
    """The whole validated params file; ``raw`` keeps the plain mapping for sidecars and hashes."""

    run: RunParams
    data: DataParams
    semantic: SemanticParams
    judge: JudgeParams
    tokenizer: TokenizerParams
    transformer: TransformerParams
    evaluation: EvaluationParams
    raw: dict[str, Any]

    def section_hash(self, *key_paths: str) -> str:
        """Short content hash of the named sub-trees (e.g. "data", "tokenizer.phase1")."""
        return params_hash({k: lookup(self.raw, k) for k in key_paths})


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


@cache
def load_schema() -> dict[str, Any]:
    """The JSON schema shared with Snakemake's ``validate``."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_params(path: str | Path) -> Params:
    """Read and validate a params file; raise :class:`ParamsError` naming the file and keys."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(str(path), [f"file not found: {path}"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(str(path), [f"not valid YAML: {exc}"]) from exc
    return validate_params(raw, source=str(path))


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping (schema, then cross-field rules) and build the typed view."""
    if not isinstance(raw, dict):
        raise ParamsError(source, [f"the top level must be a mapping of sections, got {type(raw).__name__}"])
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [_describe_schema_error(e) for e in errors]
    if problems:
        raise ParamsError(source, _unique(problems))
    params = _build(Params, raw, raw=raw)
    problems = cross_field_problems(params)
    if problems:
        raise ParamsError(source, problems)
    return params


def cross_field_problems(p: Params) -> list[str]:
    """Rules that involve more than one key; each message names the key whose value is wrong."""
    problems: list[str] = []
    arch = p.tokenizer.architecture
    f = arch.compression
    if p.data.resolution % f:
        problems.append(
            f"data.resolution = {p.data.resolution}: must be a multiple of the tokenizer's compression "
            f"{f} (tokenizer.architecture.channel_mult has {len(arch.channel_mult)} levels)"
        )
    bad_groups = [c for c in arch.level_channels if c % arch.num_groups]
    if bad_groups:
        problems.append(
            f"tokenizer.architecture.num_groups = {arch.num_groups}: must divide every channel count "
            f"(base_channels * channel_mult = {list(arch.level_channels)})"
        )
    heads = p.tokenizer.phase2.attention.heads
    if any(c % heads for c in arch.level_channels):
        problems.append(
            f"tokenizer.phase2.attention.heads = {heads}: must divide every decoder channel count "
            f"{list(arch.level_channels)}"
        )
    if p.tokenizer.control_no_entropy and p.tokenizer.quantizer.entropy_weight <= 0:
        problems.append(
            "tokenizer.control_no_entropy = true: needs tokenizer.quantizer.entropy_weight > 0 "
            "(otherwise every tokenizer is already without the regulariser)"
        )
    loss = p.tokenizer.loss
    if loss.calibration == "none" and loss.logit_weight is None:
        problems.append(
            "tokenizer.loss.logit_weight: required when tokenizer.loss.calibration = none "
            "(lambda, the scale of the logit distance inside L_per^sem)"
        )
    if loss.calibration == "initial_mean" and loss.logit_weight is not None:
        problems.append(
            f"tokenizer.loss.logit_weight = {loss.logit_weight}: not used when tokenizer.loss.calibration = "
            "initial_mean (every term is divided by its own mean at initialisation); remove the key"
        )
    if p.tokenizer.phase2.from_alpha not in p.tokenizer.alphas:
        problems.append(
            f"tokenizer.phase2.from_alpha = {p.tokenizer.phase2.from_alpha}: must be one of "
            f"tokenizer.alphas {list(p.tokenizer.alphas)} (phase 2 starts from that phase-1 tokenizer)"
        )
    for name in ("base", "large"):
        size: TransformerSizeParams = getattr(p.transformer.sizes, name)
        if size.dim % size.heads:
            problems.append(
                f"transformer.sizes.{name}.heads = {size.heads}: must divide transformer.sizes.{name}.dim = {size.dim}"
            )
    if p.transformer.ar.top_k > arch.codebook_size:
        problems.append(
            f"transformer.ar.top_k = {p.transformer.ar.top_k}: must not exceed "
            f"tokenizer.architecture.codebook_size = {arch.codebook_size}"
        )
    if p.transformer.conditional and p.transformer.num_classes < 2:
        problems.append(
            f"transformer.num_classes = {p.transformer.num_classes}: a conditional model needs >= 2 classes"
        )
    if (
        p.transformer.conditional
        and p.data.source == "synthetic"
        and p.transformer.num_classes != p.data.synthetic.num_classes
    ):
        problems.append(
            f"transformer.num_classes = {p.transformer.num_classes}: must equal "
            f"data.synthetic.num_classes = {p.data.synthetic.num_classes}"
        )
    if p.data.source != "synthetic" and not p.data.folder.train_dir:
        problems.append(f"data.folder.train_dir = '': required when data.source = {p.data.source}")
    if p.evaluation.fid_network in ("semantic", "judge") and p.semantic.backbone != "embedded":
        problems.append(
            f"evaluation.fid_network = {p.evaluation.fid_network}: needs semantic.backbone = embedded "
            "(the embedded networks are trained on the prepared data); use inception with vgg16"
        )
    if p.judge.warmup_steps >= p.judge.iterations:
        problems.append(
            f"judge.warmup_steps = {p.judge.warmup_steps}: must be below judge.iterations = {p.judge.iterations}"
        )
    if p.semantic.warmup_steps >= p.semantic.iterations:
        problems.append(
            f"semantic.warmup_steps = {p.semantic.warmup_steps}: must be below semantic.iterations = "
            f"{p.semantic.iterations}"
        )
    ev = p.evaluation
    if overlap := sorted(set(ev.pilot_seeds) & set(ev.confirmatory_seeds)):
        problems.append(
            f"evaluation.pilot_seeds = {list(ev.pilot_seeds)}: shares {overlap} with "
            "evaluation.confirmatory_seeds (a pilot seed must never be a reported result)"
        )
    if missing := sorted(set(ev.experiment_seeds) - set(ev.confirmatory_seeds)):
        problems.append(
            f"evaluation.confirmatory_seeds = {list(ev.confirmatory_seeds)}: must include every experiment seed "
            f"(missing {missing}): claim 2's two alpha ends train at every confirmatory seed, the rest of the "
            "experiment at the experiment seeds"
        )
    needed = p.evaluation.convergence.endpoint_evaluations
    for objective in p.transformer.objectives:
        iterations = getattr(p.transformer, objective).iterations
        evaluations = -(-iterations // p.transformer.eval_every)  # every eval_every steps and at the last
        if evaluations < needed:
            problems.append(
                f"transformer.eval_every = {p.transformer.eval_every}: the {objective} transformer's "
                f"{iterations} iterations give {evaluations} validation evaluation(s), fewer than "
                f"evaluation.convergence.endpoint_evaluations = {needed} (its endpoint is their mean)"
            )
    gpus, accumulation = p.run.gpus_per_job, p.run.accumulation_steps
    for key, batch in (
        ("tokenizer.phase1.batch_size", p.tokenizer.phase1.batch_size),
        ("tokenizer.phase2.batch_size", p.tokenizer.phase2.batch_size),
        ("transformer.ar.batch_size", p.transformer.ar.batch_size),
        ("transformer.nar.batch_size", p.transformer.nar.batch_size),
    ):
        if batch % (gpus * accumulation):
            problems.append(
                f"{key} = {batch}: must be a multiple of run.gpus_per_job x run.accumulation_steps = "
                f"{gpus} x {accumulation} (every GPU takes an equal slice of the global batch and splits "
                "it into equal micro-batches)"
            )
    if p.run.seed not in p.evaluation.experiment_seeds:
        problems.append(
            f"evaluation.experiment_seeds = {list(p.evaluation.experiment_seeds)}: must include run.seed = "
            f"{p.run.seed} (the primary run is one of the repeats; figures other than the seed spread use it)"
        )
    return problems


def with_seed(params: Params, seed: int) -> Params:
    """The same params with ``run.seed`` = ``seed``: one repeat of the alpha experiment, or a run of
    the power pilot.

    The training seed of a repeat must be one of ``evaluation.confirmatory_seeds`` (a superset of
    ``evaluation.experiment_seeds``) or ``evaluation.pilot_seeds``, so every run the workflow makes is
    named in params.yaml. Only the seed changes (the rest was validated), so a pilot seed need not be
    a valid primary ``run.seed``.
    """
    if seed == params.run.seed:
        return params
    ev = params.evaluation
    if seed not in (*ev.confirmatory_seeds, *ev.pilot_seeds):
        raise ParamsError(
            "params",
            [
                f"--seed {seed}: not one of evaluation.confirmatory_seeds {list(ev.confirmatory_seeds)} (which "
                f"include the experiment seeds) or evaluation.pilot_seeds {list(ev.pilot_seeds)}"
            ],
        )
    raw = copy.deepcopy(params.raw)
    raw["run"]["seed"] = int(seed)
    return dataclasses.replace(params, run=dataclasses.replace(params.run, seed=int(seed)), raw=raw)


NO_ENTROPY_VARIANT = "noentropy"


def no_entropy_alpha(params: Params) -> float:
    """The alpha of the ``noentropy`` control: the sweep's smallest (0 in every shipped config), so
    the control is the closest to a plain VQGAN, as the paper's Table 5 baseline is."""
    return min(params.tokenizer.alphas)


def without_entropy_regulariser(params: Params) -> Params:
    """The params of the ``noentropy`` control: ``tokenizer.quantizer.entropy_weight`` = 0, nothing else.

    Derived, not a second params file: the control must differ from its alpha's tokenizer in exactly one value,
    and its sidecar then records that value (entropy_weight 0) like any other setting.
    """
    if not params.tokenizer.control_no_entropy:
        raise ParamsError("params", ["tokenizer.control_no_entropy is false: there is no noentropy tokenizer"])
    raw = copy.deepcopy(params.raw)
    raw["tokenizer"]["quantizer"]["entropy_weight"] = 0.0
    raw["tokenizer"]["control_no_entropy"] = False  # the derived params describe the control run itself
    return validate_params(raw)


def lookup(raw: dict[str, Any], key_path: str) -> Any:
    """Value at a dotted key path such as ``tokenizer.phase1.lr``; KeyError names the path."""
    node: Any = raw
    for part in key_path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"params has no key {key_path!r}")
        node = node[part]
    return node


def params_hash(value: Any) -> str:
    """Stable 12-hex-digit hash of a JSON-serialisable value (used to key resume state)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def format_key_path(parts: typing.Iterable[Any]) -> str:
    """['tokenizer', 'alphas', 2] -> 'tokenizer.alphas[2]'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, list, bool)) or value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _range_text(schema: dict[str, Any]) -> str | None:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    lo_b = "(" if "exclusiveMinimum" in schema else "["
    hi_b = ")" if "exclusiveMaximum" in schema else "]"
    if lo is not None and hi is not None:
        return f"must be within {lo_b}{lo}, {hi}{hi_b}"
    if lo is not None:
        return f"must be {'>' if lo_b == '(' else '>='} {lo}"
    if hi is not None:
        return f"must be {'<' if hi_b == ')' else '<='} {hi}"
    return None


def _describe_schema_error(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    where = format_key_path(path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        lines = []
        for key in unknown:
            key_path = format_key_path([*path, key])
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; allowed keys: {', '.join(allowed)}"
            lines.append(f"{key_path} = {_show(error.instance[key])}: unknown key{suggestion}")
        return "\n  ".join(lines)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return "\n  ".join(f"{format_key_path([*path, k])}: missing key" for k in missing)
    value = f"{where} = {_show(error.instance)}"
    if kind in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"{value}: {_range_text(error.schema)}"
    if kind == "enum":
        return f"{value}: must be one of {', '.join(map(str, error.validator_value))}"
    if kind == "type":
        hint = ""
        if isinstance(error.instance, str) and _looks_numeric(error.instance):
            hint = " (YAML reads exponent numbers without a dot, like 1e-4, as text: write 1.0e-4)"
        return f"{value}: must be of type {error.validator_value}{hint}"
    if kind == "minItems":
        return f"{value}: must have at least {error.validator_value} item(s)"
    if kind == "maxItems":
        return f"{value}: must have at most {error.validator_value} item(s)"
    if kind == "uniqueItems":
        return f"{value}: must not contain duplicates"
    if kind == "pattern":
        return f"{value}: must match {error.validator_value} (letters, digits, '_', '.', '-')"
    return f"{value}: {error.message}"


def _looks_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _build(cls: type, data: dict[str, Any], **extra: Any) -> Any:
    """Instantiate a (nested) frozen dataclass from an already-validated mapping."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in fields(cls):
        if field.name in extra:
            kwargs[field.name] = extra[field.name]
        elif field.name not in data and field.default is not MISSING:
            kwargs[field.name] = field.default  # an optional key the schema allows to be absent
        else:
            kwargs[field.name] = _coerce(hints[field.name], data[field.name])
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    if is_dataclass(hint):
        return _build(hint, value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_coerce(item_hint, v) for v in value)
    if hint is float:
        return float(value)
    if origin in (Literal, types.UnionType) or hint in (int, str, bool):
        return value
    raise TypeError(f"unsupported params field type {hint!r}")
