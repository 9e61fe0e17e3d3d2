"""`seqgan reference-run`: the main job and the default target from nothing, timed, and every number
the README quotes collected into results/reference/ (committed).

The README's timings and results tables are generated from this directory (`seqgan readme-tables`)
and anyone's run is checked against it (`seqgan compare-reference`), so no number in the README is
typed from memory. The run refuses to start over existing workflow outputs: a timing measured
after half the jobs were already done would be wrong without saying so.

Two steps, callable apart: :func:`run_reference` runs Snakemake twice (the same interpreter, as
``python -m snakemake``) and times each call; :func:`collect_reference` copies the artefacts and
writes timings.csv, stages.csv, run.json and numbers.json from a finished tree (``--collect-only``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import load_params, params_hash
from seqgan.report.artefacts import ArtefactLayout
from seqgan.report.numbers import collect_numbers, numbers_to_json
from seqgan.report.reference_layout import ReferenceLayout
from seqgan.report.timings import (
    BENCHMARK_DIR,
    read_benchmarks,
    stage_timings,
    stages_csv,
    timings_csv,
)

MAIN_TARGET = "results/fig2_val_loss.pdf"
# Rules whose command runs torch with ``--threads {threads}`` (1 each in the workflow): ``--threads N``
# sets them all to N, to show how much a thread count's float rounding moves the numbers.
THREADED_RULES = (
    "train_semantic",
    "train_judge",
    "tokenizer_phase1",
    "tokenizer_phase2",
    "fid_reference",
    "eval_tokenizer",
    "encode_tokens",
    "train_ar",
    "train_nar",
    "sample",
    "eval_samples",
    "fig1_phase2_decoder",
    "fig3_visualization",
)
# Workflow outputs whose presence means "not from nothing" (data/raw holds a user's input images).
OUTPUT_DIRS = ("data", "models", "results")
# Not outputs either: the committed reference (a run with --out elsewhere, e.g. --threads 2, starts
# beside it in a fresh clone) and the committed benchmark evidence.
INPUT_DIRS = (Path("data") / "raw", Path("results") / "reference", Path("results") / "evidence")


class ReferenceRunError(RuntimeError):
    """The reference run cannot start or its artefacts are incomplete; the message says what to do."""


def snakemake_commands(threads: int | None = None) -> dict[str, list[str]]:
    """The two timed calls: the main job (README's first command), then the default target.

    ``threads``: torch threads per job for every rule of :data:`THREADED_RULES` (``--set-threads``);
    None keeps the workflow's one thread per job.
    """
    snakemake = [sys.executable, "-m", "snakemake"]
    extra = [] if threads is None else ["--set-threads", *[f"{rule}={threads}" for rule in THREADED_RULES]]
    return {
        "main_job": [*snakemake, MAIN_TARGET, "--cores", "all", *extra],
        "default_target": [*snakemake, "--cores", "all", *extra],
    }


def existing_outputs(root: Path, out: Path) -> list[Path]:
    """Workflow outputs (and benchmark files) already under ``root``, apart from the reference ``out``,
    the committed reference and a user's raw data."""
    keep = {(root / p).resolve() for p in INPUT_DIRS} | {out.resolve()}
    found = []
    for name in OUTPUT_DIRS:
        directory = root / name
        if not directory.is_dir():
            continue
        for child in sorted(directory.iterdir()):
            resolved = child.resolve()
            if resolved in keep:
                continue
            if any(k.is_relative_to(resolved) for k in keep) and child.is_dir():
                found += [c for c in sorted(child.iterdir()) if c.resolve() not in keep]  # e.g. data/ beside data/raw
            else:
                found.append(child)
    benchmarks = root / BENCHMARK_DIR
    if benchmarks.is_dir() and any(benchmarks.iterdir()):
        found.append(benchmarks)
    return found


def _run_subprocess(command: Sequence[str], cwd: Path) -> int:
    return subprocess.run(list(command), cwd=cwd, check=False).returncode


def run_reference(
    params_file: Path,
    root: Path,
    out: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    run_command: Callable[[Sequence[str], Path], int] = _run_subprocess,
) -> ReferenceLayout:
    """Run the main job and the default target from nothing, timing each, then collect into ``out``.

    ``run_command(argv, cwd)`` returns the exit status (tests pass a fake that writes artefacts).
    """
    existing = existing_outputs(root, out)
    if existing and not force:
        shown = ", ".join(str(p.relative_to(root)) for p in existing[:8]) + (" ..." if len(existing) > 8 else "")
        raise ReferenceRunError(
            f"workflow outputs already exist under {root}: {shown}. A reference run's timings must come from "
            "nothing: run it in a fresh clone (git clone <repository> && cd <repository>, set up the venv), or pass "
            "--force to run over them (it clears logs/benchmarks; the timings then cover only the jobs that still run)"
        )
    if existing:
        shutil.rmtree(root / BENCHMARK_DIR, ignore_errors=True)  # stale timings of earlier runs
    measured: dict[str, Any] = {"forced": bool(existing)}
    for step, command in snakemake_commands(threads).items():
        print(f"reference-run: {step}: {' '.join(command)}", flush=True)
        start = time.monotonic()
        status = run_command(command, root)
        seconds = time.monotonic() - start
        if status != 0:
            raise ReferenceRunError(
                f"{step} failed (exit status {status}) after {seconds:.0f} s: "
                f"{' '.join(command)}; see its log under logs/, fix, and rerun with --force"
            )
        measured[step] = {"command": _shown(command), "wall_seconds": round(seconds, 1)}
        print(f"reference-run: {step} took {seconds:.0f} s", flush=True)
    return collect_reference(params_file, root, out, measured=measured)


def _shown(command: Sequence[str]) -> str:
    """The command as a reader types it (``python -m snakemake`` for this interpreter's path)."""
    return " ".join(["python" if c == sys.executable else c for c in command])


# ----------------------------------------------------------------------------------------------
# Collection
# ----------------------------------------------------------------------------------------------


def _required_files(root: Path, semantic_embedded: bool) -> dict[str, Path]:
    results = root / "results"
    files = {"claims.md": results / "claims.md", "fig2_val_loss.csv": results / "fig2_val_loss.csv"}
    if semantic_embedded:
        files["metrics/semantic.json"] = results / "metrics" / "semantic.json"
    return files


def _copied_artefacts(root: Path, semantic_embedded: bool) -> dict[str, Path]:
    """Reference-relative name -> source file: claims, Fig. 2's table, paper tables, tokenizer metrics."""
    results = root / "results"
    files = {name: path for name, path in _required_files(root, semantic_embedded).items() if path.is_file()}
    for pattern in ("*.md", "*.csv"):
        files.update({f"tables/{p.name}": p for p in sorted((results / "tables").glob(pattern))})
    tokenizer = results / "metrics" / "tokenizer"
    files.update(
        {f"metrics/tokenizer/{p.relative_to(tokenizer).as_posix()}": p for p in sorted(tokenizer.rglob("*.json"))}
    )
    return files


def _missing(root: Path, semantic_embedded: bool) -> list[str]:
    results = root / "results"
    missing = [str(p) for p in _required_files(root, semantic_embedded).values() if not p.is_file()]
    if not list((results / "tables").glob("*.md")):
        missing.append(f"{results / 'tables'}/*.md")
    if not list((results / "metrics" / "tokenizer").rglob("*.json")):
        missing.append(f"{results / 'metrics' / 'tokenizer'}/**/*.json")
    if not list((root / BENCHMARK_DIR).rglob("*.tsv")):
        missing.append(f"{root / BENCHMARK_DIR}/**/*.tsv")
    return missing


def _sidecars(models: Path) -> Iterator[dict[str, Any]]:
    """Every readable JSON object under ``models`` (the checkpoint sidecars)."""
    for path in models.rglob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            yield record


def threads_per_job(models: Path) -> list[int]:
    """Torch threads recorded in the checkpoint sidecars' compute records (every distinct value)."""
    threads = set()
    for record in _sidecars(models):
        training = record.get("training")
        compute = training.get("compute") if isinstance(training, dict) else None  # sidecar["training"]["compute"]
        if isinstance(compute, dict) and isinstance(compute.get("threads"), int):
            threads.add(compute["threads"])
    return sorted(threads)


def trained_with(models: Path) -> list[str]:
    """The git revisions recorded in the checkpoint sidecars (every distinct value): the code that
    trained the run, whichever code later collects it (``--collect-only``)."""
    return sorted({r["git_revision"] for r in _sidecars(models) if isinstance(r.get("git_revision"), str)})


def _git_revision() -> str:
    from seqgan.artefacts.provenance import git_revision

    return git_revision()


def _machine() -> dict[str, Any]:
    from seqgan.train.runtime import machine_info

    return machine_info()


def run_info(params_file: Path, root: Path, measured: dict[str, Any]) -> dict[str, Any]:
    """run.json: wall times, machine, threads, code and params identity, date."""
    params = load_params(params_file)
    commands = {k: _shown(v) for k, v in snakemake_commands().items()}
    machine = _machine()
    return {
        "main_job": measured.get("main_job") or {"command": commands["main_job"], "wall_seconds": None},
        "default_target": measured.get("default_target")
        or {"command": commands["default_target"], "wall_seconds": None},
        "forced": bool(measured.get("forced", False)),
        "machine": machine,
        "torch": machine.get("torch"),
        "threads_per_job": threads_per_job(root / "models"),
        "snakemake_cores": machine.get("cores"),
        "git_revision": ", ".join(trained_with(root / "models")) or _git_revision(),
        "collected_with": _git_revision(),
        "params_file": str(params_file),
        "params_name": params.run.name,
        "params_hash": params_hash(params.raw),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _clear(ref: ReferenceLayout) -> None:
    """Remove what an earlier collection wrote (only the reference's own names, never the directory)."""
    for directory in (ref.tables, ref.metrics):
        shutil.rmtree(directory, ignore_errors=True)
    for path in (ref.claims_md, ref.fig2_csv, ref.timings_csv, ref.stages_csv, ref.run_json, ref.numbers_json):
        path.unlink(missing_ok=True)


def collect_reference(
    params_file: Path, root: Path, out: Path, *, measured: dict[str, Any] | None = None
) -> ReferenceLayout:
    """Write the reference directory ``out`` from the finished run under ``root``.

    ``measured``: the wall times of :func:`run_reference`; without them (``--collect-only``) those of
    an earlier run.json in ``out`` are kept, else they are recorded as null.
    """
    params = load_params(params_file)
    semantic_embedded = params.semantic.backbone == "embedded"
    missing = _missing(root, semantic_embedded)
    if missing:
        raise ReferenceRunError(
            "the run is incomplete, missing: "
            + ", ".join(missing)
            + ". Build the default target first (snakemake --cores all)"
        )
    ref = ReferenceLayout(out)
    if measured is None:
        previous = ref.run_info() if ref.exists() else {}
        measured = {k: previous[k] for k in ("main_job", "default_target", "forced") if k in previous}
    jobs = read_benchmarks(root / BENCHMARK_DIR)
    numbers = collect_numbers(params, ArtefactLayout(root / "results", root / "models"))
    info = run_info(params_file, root, measured)

    _clear(ref)
    for name, source in _copied_artefacts(root, semantic_embedded).items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    atomic_write_text(ref.timings_csv, timings_csv(jobs))
    atomic_write_text(ref.stages_csv, stages_csv(stage_timings(jobs)))
    atomic_write_text(ref.numbers_json, numbers_to_json(numbers))
    atomic_write_text(ref.run_json, json.dumps(info, indent=2) + "\n")
    return ref


def reference_run_job(params_file: Path, out: Path, *, collect_only: bool, force: bool, threads: int | None) -> None:
    """`seqgan reference-run`: run (or only collect) the reference run of the embedded default."""
    try:
        if collect_only:
            ref = collect_reference(params_file, Path.cwd(), out)
        else:
            ref = run_reference(params_file, Path.cwd(), out, force=force, threads=threads)
    except ReferenceRunError as exc:
        raise SystemExit(f"error: reference-run: {exc}") from None
    print(f"{ref.root}: reference written; next: `seqgan readme-tables` and commit {ref.root}")
