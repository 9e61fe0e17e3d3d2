"""How much AR training makes samples the judge recognises: the usable-samples rule against compute.

    .venv/bin/python benchmarks/ar_usability_curve.py --root /path/to/a/workflow/run \\
        --variant alpha0.0 --seed 100 --steps 500 1000 2000 4000 \\
        --out results/evidence/ar_usability_curve.csv
    # other levers: the large size, class-conditional training and sampling
    .venv/bin/python benchmarks/ar_usability_curve.py ... --size large --conditional --steps 2000 ...

``--root`` is a checkout where the workflow has built the tokenizer and tokens of ``--variant`` /
``--seed``, the judge and the FID reference (e.g. after ``snakemake results/pilot/power.md``). For
each length it trains the AR transformer of params.yaml's base size for that many steps (the
decay starting at the same fraction of the run as params.yaml's ``decay_start / iterations``), then
samples, decodes and evaluates exactly as the workflow's ``train_ar``, ``sample`` and
``eval_samples`` rules do (their job functions, one torch thread), and applies the claims' usable-
samples rule (:func:`seqgan.report.verdicts.generation.unusable_reason`). ``--size`` picks another
size of ``transformer.sizes``; ``--conditional`` trains and samples class-conditionally (equal
samples per class), which takes the choice of class away from the transformer. One CSV row per
length: size, conditional, steps, epochs of training tokens seen, the endpoint validation CE and the
plateau rule, the judge's confident fraction (samples / real), the class-histogram TV distance
against its noise floor and the samples' predicted-class histogram (which classes the skew goes to),
whether the set is usable, FID, and the wall seconds of training and of sampling + evaluation.
Everything runs in a temporary directory; nothing of the workflow's is touched.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import yaml
from tokenizer_recipe import append_csv_rows

from seqgan.config import validate_params, with_seed
from seqgan.evaluate.samples_job import eval_samples_job
from seqgan.report.convergence import transformer_convergence
from seqgan.report.verdicts.generation import generation_run, unusable_reason
from seqgan.sample.sample_job import sample_job
from seqgan.train.runtime import cpu_description, set_threads
from seqgan.train.transformer import train_transformer

COLUMNS = (
    "variant",
    "seed",
    "size",
    "conditional",
    "steps",
    "epochs",
    "endpoint_val_ce",
    "plateau",
    "confident_samples",
    "confident_real",
    "histogram_tv",
    "tv_noise_floor",
    "class_histogram",
    "usable",
    "fid",
    "train_seconds",
    "sample_eval_seconds",
    "cpu",
)


def length_params(raw: dict, steps: int, seed: int, conditional: bool = False):
    """params.yaml with the AR run ``steps`` long (its decay at the same fraction), ``seed`` as run.seed
    and, with ``conditional``, class-conditional training and sampling."""
    changed = copy.deepcopy(raw)
    if conditional:
        changed["transformer"]["conditional"] = True
    ar = changed["transformer"]["ar"]
    fraction = ar["decay_start"] / ar["iterations"]
    ar.update(iterations=int(steps), decay_start=int(round(fraction * steps)))
    changed["run"]["device"] = "cpu"
    return with_seed(validate_params(changed, f"params.yaml (AR {steps} steps)"), seed)


def run_length(
    root: Path, raw: dict, variant: str, seed: int, steps: int, tmp: Path, size: str | None = None, conditional=False
) -> dict:
    params = length_params(raw, steps, seed, conditional)
    size = size or params.transformer.models[0]
    data = root / "data" / params.data.name
    tokens = data / "tokens" / variant / f"seed{seed}"
    tokenizer = root / "models" / "tokenizer" / "phase1" / variant / f"seed{seed}" / "tokenizer.safetensors"
    judge = root / "models" / "judge" / "net.safetensors"
    reference = root / "results" / "fid_refs" / f"{params.evaluation.generation_reference}.npz"
    model = tmp / f"ar{steps}" / "model.safetensors"
    start = time.perf_counter()
    metrics = train_transformer(
        params,
        objective="ar",
        size=size,
        train_tokens=tokens / "train",
        val_tokens=tokens / "val",
        out_path=model,
        resume_path=tmp / f"ar{steps}" / "resume.pt",
        log_dir=tmp / f"ar{steps}" / "logs",
        progress=False,
    )
    trained = time.perf_counter()
    samples = tmp / f"ar{steps}" / "samples"
    sample_job(
        params,
        objective="ar",
        transformer_file=model,
        tokenizer_file=tokenizer,
        seed=0,
        num_samples=None,
        out=samples,
        threads=1,
    )
    out = tmp / f"ar{steps}" / "generation.json"
    eval_samples_job(
        params,
        samples_dir=samples,
        objective="ar",
        size=size,
        variant=variant,
        decoder="phase1",
        seed=0,
        reference_file=reference,
        reference_split_dir=data / params.evaluation.generation_reference,
        semantic=None,
        out=out,
        threads=1,
        judge=str(judge),
    )
    done = time.perf_counter()
    run = generation_run(out, "ar", variant, "phase1", 0)
    reason = unusable_reason(run, params.evaluation.verdicts)
    endpoint, plateau = transformer_convergence(metrics, params.evaluation.convergence, model)
    train_tokens = metrics["tokens"]["train"].get("count") or 1
    histogram = (json.loads(out.read_text()).get("classifier") or {}).get("predicted_class_histogram") or []
    return {
        "variant": variant,
        "seed": seed,
        "size": size,
        "conditional": "yes" if conditional else "no",
        "steps": steps,
        "epochs": round(steps * params.transformer.ar.batch_size / train_tokens, 2),
        "endpoint_val_ce": round(endpoint, 4),
        "plateau": "holds" if plateau.holds else "still improving" if plateau.holds is False else "not checkable",
        "confident_samples": run.confident,
        "confident_real": run.reference_confident,
        "histogram_tv": None if run.histogram_tv is None else round(run.histogram_tv, 4),
        "tv_noise_floor": None if run.histogram_floor is None else round(run.histogram_floor, 4),
        "class_histogram": " ".join(map(str, histogram)),
        "usable": "yes" if reason is None else f"no: {reason}",
        "fid": round(run.fid, 3),
        "train_seconds": round(trained - start, 1),
        "sample_eval_seconds": round(done - trained, 1),
        "cpu": cpu_description(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="a checkout where the workflow built the inputs")
    parser.add_argument("--params", type=Path, help="params file (default: ROOT/params.yaml)")
    parser.add_argument("--variant", default="alpha0.0")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps", type=int, nargs="+", required=True)
    parser.add_argument("--size", help="transformer size (default: transformer.models[0])")
    parser.add_argument("--conditional", action="store_true", help="class-conditional training and sampling")
    parser.add_argument("--out", type=Path, required=True, help="CSV to append one row per length to")
    args = parser.parse_args()
    set_threads(1)
    raw = yaml.safe_load((args.params or args.root / "params.yaml").read_text())
    print(cpu_description(), flush=True)
    with tempfile.TemporaryDirectory(prefix="ar-usability-") as tmp:
        for steps in args.steps:
            row = run_length(args.root, raw, args.variant, args.seed, steps, Path(tmp), args.size, args.conditional)
            print("  ".join(f"{k}={row[k]}" for k in COLUMNS if k != "cpu"), flush=True)
            append_csv_rows(args.out, COLUMNS, [row])


if __name__ == "__main__":
    main()
