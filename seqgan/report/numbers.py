"""The named numbers of one run, with their value per experiment seed: what a reference run records
(results/reference/numbers.json) and what `seqgan compare-reference` compares.

Every number is read from the recorded artefacts through :class:`ArtefactLayout` (the files the
tables, Fig. 2 and claims.md read), never typed in. Each keeps its value per experiment seed, so a
comparison can weigh a difference against the seed-to-seed spread instead of a guessed margin.

A missing artefact leaves its number (or that seed's value) out and is listed in ``missing``
instead of stopping: a partial run, say the main job only, still compares what it has, and the
comparison says what is absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqgan.config import Params
from seqgan.report.artefacts import (
    ArtefactLayout,
    MissingArtefactError,
    ProducedRuns,
    read_json,
    variant_name,
)
from seqgan.report.claims import evaluate_claims
from seqgan.report.convergence import transformer_convergence
from seqgan.report.stats import Spread, paired_interval, spread
from seqgan.report.verdicts.validation_loss import loss_comparisons

# (metric name, key in the eval-tokenizer metrics JSON, unit), per phase-1 tokenizer and seed.
TOKENIZER_METRICS: tuple[tuple[str, str, str], ...] = (
    ("psnr", "psnr", "dB"),
    ("codebook_usage", "codebook_usage", "fraction of codes"),
    ("codebook_perplexity", "codebook_perplexity", "codes"),
    ("rfid", "rfid", "FID"),
    ("semantic_accuracy_reconstructed", "classifier_accuracy_reconstructed", "fraction"),
    ("judge_accuracy_reconstructed", "judge_accuracy_reconstructed", "fraction"),
    ("mask_iou", "instrument.reconstructed.mask_iou", "IoU"),
    ("shape_colour_delta_e", "instrument.reconstructed.shape_colour_delta_e", "CIE76 delta E"),
    ("background_delta_e", "instrument.reconstructed.background_delta_e", "CIE76 delta E"),
)
# (metric name, key in the transformer sidecar's "metrics", unit), per transformer and seed.
TRANSFORMER_METRICS: tuple[tuple[str, str, str], ...] = (
    ("final_val_loss", "final_val_loss", "nats/token"),
    ("unigram_cross_entropy", "unigram_cross_entropy", "nats/token"),
)
PAIRED_DIFFERENCE = "paired_difference"
ENDPOINT = "endpoint_val_loss"  # the mean of the last evaluations (claim 2's compared number)


@dataclass(frozen=True)
class Interval:
    """Two-sided Student-t interval of a mean (claim 2's paired differences)."""

    confidence: float
    low: float
    high: float


def number_name(kind: str, subject: tuple[str, ...], metric: str) -> str:
    """``tokenizer/alpha0.5/psnr``, ``transformer/ar/base/alpha0.5/final_val_loss``, ``semantic/val_accuracy``."""
    return "/".join((kind, *subject, metric))


@dataclass(frozen=True)
class Number:
    """One reproduced number: its value per experiment seed, what it measures and the files it came from.

    ``kind`` is tokenizer, transformer, semantic or claim2; ``subject`` names the run within the kind,
    e.g. ``("alpha0.5",)`` or ``("ar", "base", "alpha1.0 - alpha0.0")``.
    """

    kind: str
    subject: tuple[str, ...]
    metric: str
    values: dict[int, float]
    unit: str
    sources: tuple[str, ...] = ()
    interval: Interval | None = None

    @property
    def name(self) -> str:
        return number_name(self.kind, self.subject, self.metric)

    @property
    def spread(self) -> Spread:
        return spread(list(self.values.values()))


@dataclass(frozen=True)
class ClaimVerdict:
    statement: str
    verdict: str
    # (part statement, part verdict) in claims.md's order: a claim "not testable" overall may hold a
    # decided or undecided part (claim 2's validation loss beside its generation FID)
    parts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunNumbers:
    """Every number of a run by name, each claim's verdict, and the artefacts that were not there."""

    numbers: dict[str, Number]
    claims: dict[int, ClaimVerdict] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------------
# Reading a run
# ----------------------------------------------------------------------------------------------


class _Reader:
    """Reads recorded JSON artefacts once each, remembering the ones that are missing."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self._cache: dict[Path, dict[str, Any] | None] = {}

    def record(self, path: Path) -> dict[str, Any] | None:
        if path not in self._cache:
            try:
                self._cache[path] = read_json(path)
            except MissingArtefactError:
                self._cache[path] = None
                self.missing.append(str(path))
        return self._cache[path]


def _per_seed(
    reader: _Reader, files: Mapping[int, Path], key: str, *, nested: str | None = None
) -> tuple[dict[int, float], tuple[str, ...]]:
    """Seed -> value of ``key`` (under ``nested`` if given) in each seed's file; seeds without it are left out."""
    values, sources = {}, []
    for seed, path in files.items():
        record = reader.record(path)
        if record is None:
            continue
        if nested is not None:
            record = record.get(nested) or {}
        value: Any = record
        for part in key.split("."):  # a dotted key reaches into nested records (the instrument's)
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:  # not recorded by this backbone (e.g. semantic accuracy with VGG16)
            continue
        values[seed] = float(value)
        sources.append(str(path))
    return values, tuple(sources)


def _tokenizer_numbers(reader: _Reader, runs: ProducedRuns, layout: ArtefactLayout) -> list[Number]:
    out = []
    for variant in runs.tokenizer_variants:
        files = {seed: layout.tokenizer_metrics(variant, seed) for seed in runs.seeds_of(variant)}
        for metric, key, unit in TOKENIZER_METRICS:
            values, sources = _per_seed(reader, files, key)
            if values:
                out.append(Number("tokenizer", (variant,), metric, values, unit, sources))
    return out


def _transformer_numbers(reader: _Reader, params: Params, runs: ProducedRuns, layout: ArtefactLayout) -> list[Number]:
    out = []
    size = runs.primary_size
    for objective in params.transformer.objectives:
        for variant in runs.variants:
            files = {
                seed: layout.transformer_sidecar(objective, size, variant, seed) for seed in runs.seeds_of(variant)
            }
            for metric, key, unit in TRANSFORMER_METRICS:
                values, sources = _per_seed(reader, files, key, nested="metrics")
                if values:
                    out.append(Number("transformer", (objective, size, variant), metric, values, unit, sources))
            endpoints, sources = _endpoints(reader, files, params)
            if endpoints:
                subject = (objective, size, variant)
                out.append(Number("transformer", subject, ENDPOINT, endpoints, "nats/token", sources))
    return out


def _endpoints(reader: _Reader, files: Mapping[int, Path], params: Params) -> tuple[dict[int, float], tuple[str, ...]]:
    """Seed -> endpoint validation loss (seqgan.report.convergence) of each seed's transformer sidecar."""
    values, sources = {}, []
    for seed, path in files.items():
        record = reader.record(path)
        if record is None or "val_curve" not in (record.get("metrics") or {}):
            continue
        values[seed], _ = transformer_convergence(record["metrics"], params.evaluation.convergence, path)
        sources.append(str(path))
    return values, tuple(sources)


def _semantic_numbers(reader: _Reader, params: Params, layout: ArtefactLayout) -> list[Number]:
    if params.semantic.backbone != "embedded":
        return []  # VGG16 is pretrained: no validation accuracy of ours to compare
    values, sources = _per_seed(reader, {params.run.seed: layout.semantic_metrics()}, "val_accuracy")
    return [Number("semantic", (), "val_accuracy", values, "fraction", sources)] if values else []


def _claim2_numbers(params: Params, runs: ProducedRuns, transformers: Mapping[str, Number]) -> list[Number]:
    """Claim 2's paired per-seed loss differences (the comparisons its verdict rests on) with their t-interval."""
    if len(runs.alphas) < 2:
        return []
    confidence = params.evaluation.verdicts.interval_confidence
    size = runs.primary_size
    out = []
    for objective in params.transformer.objectives:
        for later, earlier in loss_comparisons([variant_name(a) for a in runs.alphas]):
            a = transformers.get(number_name("transformer", (objective, size, later), ENDPOINT))
            b = transformers.get(number_name("transformer", (objective, size, earlier), ENDPOINT))
            if a is None or b is None:
                continue
            diffs = {s: a.values[s] - b.values[s] for s in sorted(a.values) if s in b.values}
            if not diffs:
                continue
            interval = paired_interval(diffs, confidence)
            bounds = (
                Interval(confidence, interval.low, interval.high)
                if interval.low is not None and interval.high is not None
                else None
            )
            out.append(
                Number(
                    "claim2",
                    (objective, size, f"{later} - {earlier}"),
                    PAIRED_DIFFERENCE,
                    diffs,
                    "nats/token",
                    a.sources + b.sources,
                    bounds,
                )
            )
    return out


def collect_numbers(params: Params, layout: ArtefactLayout) -> RunNumbers:
    """Every named number of the run the params describe, read from ``layout``, and each claim's verdict.

    Per tokenizer variant (``ProducedRuns.tokenizer_variants``): PSNR, codebook usage and perplexity,
    rFID, semantic accuracy on reconstructions; per transformer (primary size, every objective and
    variant): final and endpoint validation cross-entropy and unigram cross-entropy; the semantic
    network's validation accuracy; claim 2's paired differences of the endpoints. Verdicts come from
    :func:`seqgan.report.claims.evaluate_claims`, so they are absent when any file it reads is.
    """
    reader = _Reader()
    runs = ProducedRuns(params)
    numbers = _tokenizer_numbers(reader, runs, layout)
    transformers = {n.name: n for n in _transformer_numbers(reader, params, runs, layout)}
    numbers += [*transformers.values(), *_semantic_numbers(reader, params, layout)]
    numbers += _claim2_numbers(params, runs, transformers)
    claims: dict[int, ClaimVerdict] = {}
    missing = list(reader.missing)
    try:
        claims = {
            c.number: ClaimVerdict(c.statement, c.verdict, tuple((p.statement, p.verdict) for p in c.parts))
            for c in evaluate_claims(params, layout)
        }
    except (MissingArtefactError, KeyError) as exc:
        missing.append(f"claims (no verdicts): {exc.args[0] if exc.args else exc}")
    return RunNumbers({n.name: n for n in numbers}, claims, tuple(dict.fromkeys(missing)))


# ----------------------------------------------------------------------------------------------
# numbers.json
# ----------------------------------------------------------------------------------------------


def numbers_to_json(run: RunNumbers) -> str:
    """numbers.json: each number with its per-seed values (mean, std and n beside them for readers)."""

    def entry(n: Number) -> dict[str, Any]:
        s = n.spread
        return {
            "kind": n.kind,
            "subject": list(n.subject),
            "metric": n.metric,
            "unit": n.unit,
            "values": {str(seed): v for seed, v in sorted(n.values.items())},
            "mean": s.mean,
            "std": s.std,
            "n": s.count,
            "interval": None if n.interval is None else vars(n.interval),
            "sources": list(n.sources),
        }

    doc = {
        "numbers": {name: entry(n) for name, n in run.numbers.items()},
        "claims": {
            str(k): {"statement": v.statement, "verdict": v.verdict, "parts": [list(p) for p in v.parts]}
            for k, v in sorted(run.claims.items())
        },
        "missing": list(run.missing),
    }
    return json.dumps(doc, indent=2) + "\n"


def numbers_from_json(text: str, source: str = "numbers.json") -> RunNumbers:
    """Inverse of :func:`numbers_to_json` (means and stds are recomputed from the per-seed values)."""
    try:
        doc = json.loads(text)
        numbers = {}
        for name, e in doc["numbers"].items():
            interval = Interval(**e["interval"]) if e.get("interval") else None
            numbers[name] = Number(
                e["kind"],
                tuple(e["subject"]),
                e["metric"],
                {int(s): float(v) for s, v in e["values"].items()},
                e["unit"],
                tuple(e.get("sources", ())),
                interval,
            )
        claims = {
            int(k): ClaimVerdict(v["statement"], v["verdict"], tuple(tuple(p) for p in v.get("parts", ())))
            for k, v in doc.get("claims", {}).items()
        }
        return RunNumbers(numbers, claims, tuple(doc.get("missing", ())))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not a numbers file written by `seqgan reference-run` ({exc!r})") from None
