"""The power pilot (results/pilot/power.md, .json): how many confirmatory seeds claim 2 needs.

Claim 2 compares the endpoint validation loss of the largest alpha's transformer with the smallest
alpha's, paired per seed. Its interval is only as narrow as the seed-to-seed sd of that paired
difference allows, and that sd is a property of the whole training pipeline at its sizes, so it is
measured, not assumed: on ``evaluation.pilot_seeds`` (disjoint from the confirmatory seeds, checked
by the params validator), which are never reported as a result. From the pilot's paired sd this
report gives the smallest number of confirmatory seeds, at least :data:`MIN_CONFIRMATORY_SEEDS`,
whose t-interval half-width reaches ``evaluation.verdicts.target_half_width``, and what the
confirmatory seeds now in params (``evaluation.confirmatory_seeds``) would resolve. The design is
then fixed in params.yaml before the confirmatory run; nothing here reads the confirmatory runs.

The pilot also repeats the manipulation check (mask IoU of the largest alpha minus the smallest)
and the plateau rule on its own seeds, so a design that fails either is seen before the
confirmatory run is spent on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params
from seqgan.report.artefacts import ArtefactLayout, MissingArtefactError, ProducedRuns, read_json
from seqgan.report.convergence import tokenizer_plateau, transformer_convergence
from seqgan.report.stats import power_at, power_of, seeds_for_half_width
from seqgan.report.verdicts.manipulation import semantic_fidelity

MIN_CONFIRMATORY_SEEDS = 5  # the floor: fewer seeds cannot show that an effect is stable


def _ends(params: Params) -> tuple[str, str]:
    """(larger, smaller): claim 2's alpha ends as the claims name them, refused with one alpha."""
    ends = ProducedRuns(params).alpha_ends
    if len(ends) < 2:
        raise ValueError(f"tokenizer.alphas = {list(params.tokenizer.alphas)}: the pilot needs two alphas to compare")
    smaller, larger = ends
    return larger, smaller


def pilot_inputs(params: Params, layout: ArtefactLayout) -> list[str]:
    """Exactly the artefacts the pilot reads (the Snakemake rule's inputs); none with one alpha (the
    job then says why it has nothing to measure)."""
    if len(params.tokenizer.alphas) < 2:
        return []
    larger, smaller = _ends(params)
    size = ProducedRuns(params).primary_size
    files = []
    for seed in params.evaluation.pilot_seeds:
        for variant in (smaller, larger):
            files.append(layout.tokenizer_metrics(variant, seed))
            files += [layout.transformer_sidecar(o, size, variant, seed) for o in params.transformer.objectives]
    return [str(f) for f in files]


def pilot_power(params: Params, layout: ArtefactLayout) -> dict[str, Any]:
    """The pilot's measurements and the seed count they call for, as JSON-ready data."""
    larger, smaller = _ends(params)
    size = ProducedRuns(params).primary_size
    seeds = list(params.evaluation.pilot_seeds)
    v, convergence = params.evaluation.verdicts, params.evaluation.convergence
    planned = len(params.evaluation.confirmatory_seeds)
    tokenizers = {(s, x): read_json(layout.tokenizer_metrics(x, s)) for s in seeds for x in (smaller, larger)}
    fidelity = {key: semantic_fidelity(metrics) for key, metrics in tokenizers.items()}
    iou = {
        s: fidelity[(s, larger)] - fidelity[(s, smaller)]
        for s in seeds
        if fidelity[(s, larger)] is not None and fidelity[(s, smaller)] is not None
    }
    tokenizers_short = [
        f"{x} seed {s}"
        for (s, x), metrics in tokenizers.items()
        if not tokenizer_plateau(metrics, convergence, layout.tokenizer_metrics(x, s)).holds
    ]
    objectives = {}
    for objective in params.transformer.objectives:
        endpoints, short = {}, []
        for s in seeds:
            for x in (smaller, larger):
                path = layout.transformer_sidecar(objective, size, x, s)
                endpoints[(s, x)], check = transformer_convergence(read_json(path)["metrics"], convergence, path)
                if not check.holds:
                    short.append(f"{x} seed {s}")
        differences = {s: endpoints[(s, larger)] - endpoints[(s, smaller)] for s in seeds}
        power = power_of(list(differences.values()), v.interval_confidence, v.power)
        entry: dict[str, Any] = {
            "comparison": f"{larger} - {smaller}",
            "differences": {str(s): d for s, d in differences.items()},
            "mean": sum(differences.values()) / len(differences),
            "paired_sd": power.paired_sd,
            "transformers_short_of_plateau": short,
        }
        if power.paired_sd is not None:
            needed = seeds_for_half_width(
                power.paired_sd, v.interval_confidence, v.target_half_width, MIN_CONFIRMATORY_SEEDS
            )
            entry["seeds_needed"] = needed
            entry["at_planned_seeds"] = _projected(power.paired_sd, planned, v.interval_confidence, v.power)
            entry["at_needed_seeds"] = _projected(power.paired_sd, needed, v.interval_confidence, v.power)
        objectives[objective] = entry
    return {
        "pilot_seeds": seeds,
        "confirmatory_seeds": list(params.evaluation.confirmatory_seeds),
        "target_half_width": v.target_half_width,
        "interval_confidence": v.interval_confidence,
        "power": v.power,
        "min_confirmatory_seeds": MIN_CONFIRMATORY_SEEDS,
        "manipulation": {
            "mask_iou_difference": {str(s): d for s, d in iou.items()},
            "every_seed_at_least": v.manipulation_min_difference,
            "passes": len(iou) == len(seeds) and all(d >= v.manipulation_min_difference for d in iou.values()),
        },
        "tokenizers_short_of_plateau": tokenizers_short,
        "objectives": objectives,
    }


def _projected(sd: float, n: int, confidence: float, power: float) -> dict[str, float | int | None]:
    """Half-width and minimum detectable effect n seeds would give at the pilot's paired sd."""
    at = power_at(sd, n, confidence, power)
    return {"seeds": n, "half_width": at.half_width, "minimum_detectable_effect": at.minimum_detectable_effect}


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pilot_markdown(result: dict[str, Any]) -> str:
    m = result["manipulation"]
    lines = [
        "# Power pilot (never reported as a result)",
        "",
        f"Pilot seeds {result['pilot_seeds']}; the confirmatory seeds now in params: {result['confirmatory_seeds']}. "
        f"Target: a {result['interval_confidence']:.0%} half-width of at most {result['target_half_width']} nats/token "
        f"for claim 2's paired endpoint difference, with at least {result['min_confirmatory_seeds']} seeds; minimum "
        f"detectable effects at {result['power']:.0%} power.",
        "",
        f"Manipulation check on the pilot seeds (mask IoU, larger alpha minus smaller, at least "
        f"{m['every_seed_at_least']:+.3f} in every seed): "
        + ", ".join(f"seed {s} {d:+.4f}" for s, d in m["mask_iou_difference"].items())
        + f" -> **{'passes' if m['passes'] else 'fails'}**.",
        "",
    ]
    if result["tokenizers_short_of_plateau"]:
        lines += ["Tokenizers short of their plateau: " + ", ".join(result["tokenizers_short_of_plateau"]) + ".", ""]
    lines += [
        "| objective | comparison | per pilot seed | paired sd | seeds needed | half-width / MDE at the planned seeds "
        "| half-width / MDE at the seeds needed | transformers short of plateau |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for objective, e in result["objectives"].items():
        per_seed = ", ".join(f"{d:+.3f}" for d in e["differences"].values())
        planned, needed = e.get("at_planned_seeds") or {}, e.get("at_needed_seeds") or {}
        lines.append(
            f"| {objective.upper()} | {e['comparison']} | {per_seed} | {_f(e['paired_sd'])} "
            f"| {e.get('seeds_needed', '-')} "
            f"| n = {planned.get('seeds', '-')}: {_f(planned.get('half_width'))} / "
            f"{_f(planned.get('minimum_detectable_effect'))} "
            f"| n = {needed.get('seeds', '-')}: {_f(needed.get('half_width'))} / "
            f"{_f(needed.get('minimum_detectable_effect'))} "
            f"| {', '.join(e['transformers_short_of_plateau']) or 'none'} |"
        )
    lines += [
        "",
        "Set `evaluation.confirmatory_seeds` to that many seeds (disjoint from the pilot's) before the confirmatory "
        "run; if the budget allows fewer, claims.md reports the minimum detectable effect the run can resolve.",
        "",
    ]
    return "\n".join(lines)


def pilot_job(params: Params, *, layout: ArtefactLayout, out: Path) -> dict[str, Any]:
    """`seqgan power-pilot`: results/pilot/power.md and power.json beside it (rule ``power_pilot``)."""
    try:
        result = pilot_power(params, layout)
    except (MissingArtefactError, ValueError, KeyError) as exc:
        raise SystemExit(f"error: power-pilot: {exc}") from None
    text = pilot_markdown(result)
    atomic_write_text(Path(out).with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out, text)
    print(text)
    return result
