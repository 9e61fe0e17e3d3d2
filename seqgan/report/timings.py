"""Per-job and per-stage timings of a run, read from the benchmark files Snakemake writes.

Every rule declares ``benchmark: logs/benchmarks/<rule>/<wildcards>.tsv`` (a rule without wildcards:
``logs/benchmarks/<rule>.tsv``), so the path alone names the rule and the job. Snakemake's TSV has
one row per repeat with the columns ``s`` (wall seconds), ``max_rss`` (peak resident memory, MB)
and ``cpu_time`` (user + system CPU seconds of the job's processes), among others; memory and CPU
are ``NA`` when a job ended before the first sample. Timings in the README are computed from these
files, never typed from memory.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCHMARK_DIR = Path("logs") / "benchmarks"
TIMING_COLUMNS = ("rule", "wildcards", "seconds", "max_rss_mb", "cpu_seconds", "started")
STAGE_COLUMNS = ("rule", "jobs", "median_seconds", "max_seconds", "total_seconds", "total_cpu_seconds", "peak_rss_mb")


@dataclass(frozen=True)
class JobTiming:
    rule: str
    wildcards: str  # the benchmark path below the rule's directory, e.g. "ar/base/alpha0.5/phase1/seed0"
    seconds: float
    max_rss_mb: float | None
    cpu_seconds: float | None
    started: str  # UTC, ISO 8601: the file's modification time minus the job's wall seconds


@dataclass(frozen=True)
class StageTiming:
    """One rule's jobs together: count, median and longest wall time, CPU seconds, peak memory."""

    rule: str
    jobs: int
    median_seconds: float
    max_seconds: float
    total_seconds: float
    total_cpu_seconds: float | None  # None when no job of the rule recorded its CPU time
    peak_rss_mb: float | None


def _number(text: str | None) -> float | None:
    if text is None or text.strip() in ("", "NA", "-"):
        return None
    return float(text)


def read_benchmarks(directory: Path) -> list[JobTiming]:
    """One timing per benchmark row under ``directory`` (logs/benchmarks), ordered by start time."""
    jobs = []
    for path in sorted(Path(directory).rglob("*.tsv")):
        rel = path.relative_to(directory).with_suffix("")
        rule, wildcards = rel.parts[0], "/".join(rel.parts[1:])
        finished = path.stat().st_mtime
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows or "s" not in rows[0]:
            raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column); delete it and rerun the job")
        for row in rows:
            seconds = float(row["s"])
            started = datetime.fromtimestamp(finished - seconds, tz=UTC).isoformat(timespec="seconds")
            jobs.append(
                JobTiming(rule, wildcards, seconds, _number(row.get("max_rss")), _number(row.get("cpu_time")), started)
            )
    return sorted(jobs, key=lambda j: (j.started, j.rule, j.wildcards))


def stage_timings(jobs: Sequence[JobTiming]) -> list[StageTiming]:
    """Per rule, in the order the rules' first jobs started (the pipeline's order in that run)."""
    by_rule: dict[str, list[JobTiming]] = {}
    for job in sorted(jobs, key=lambda j: (j.started, j.rule, j.wildcards)):
        by_rule.setdefault(job.rule, []).append(job)
    stages = []
    for rule, group in by_rule.items():
        seconds = [j.seconds for j in group]
        cpu = [j.cpu_seconds for j in group if j.cpu_seconds is not None]
        rss = [j.max_rss_mb for j in group if j.max_rss_mb is not None]
        stages.append(
            StageTiming(
                rule,
                len(group),
                statistics.median(seconds),
                max(seconds),
                sum(seconds),
                sum(cpu) if cpu else None,
                max(rss) if rss else None,
            )
        )
    return stages


def _csv(columns: Sequence[str], rows: Sequence[object]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if getattr(row, c) is None else getattr(row, c) for c in columns])
    return buffer.getvalue()


def timings_csv(jobs: Sequence[JobTiming]) -> str:
    return _csv(TIMING_COLUMNS, jobs)


def stages_csv(stages: Sequence[StageTiming]) -> str:
    return _csv(STAGE_COLUMNS, stages)


def read_stages(path: Path) -> list[StageTiming]:
    """stages.csv of a reference run, as written by :func:`stages_csv`."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return [
            StageTiming(
                r["rule"],
                int(r["jobs"]),
                float(r["median_seconds"]),
                float(r["max_seconds"]),
                float(r["total_seconds"]),
                _number(r["total_cpu_seconds"]),
                _number(r["peak_rss_mb"]),
            )
            for r in rows
        ]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a stages.csv written by `seqgan reference-run` ({exc!r})") from None
