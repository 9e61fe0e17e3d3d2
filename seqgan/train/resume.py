"""Where a training job's resume state and logs live while it runs.

Resume state lives outside Snakemake's declared outputs (Snakemake deletes those when a job
fails), keyed by a hash of the run's declared identity (:func:`seqgan.runs.run_values` without
gates, plus the seed and the hashes of its input data): a changed key that shapes the run never
resumes from a stale state, and a changed key that does not (a gate, a sampling setting, the
checkpoint cadence) keeps it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from seqgan.config import params_hash
from seqgan.train.distributed import is_main_process

RESUME_ROOT = Path("work/resume")


def resume_path(rule: str, key: Any, name: str = "state.pt") -> Path:
    """``work/resume/<rule>/<hash of key>/<name>``."""
    return RESUME_ROOT / rule / params_hash(key) / name


def publish_logs(work_logs: Path, log_dir: str | Path) -> None:
    """Copy a run's logs from its resume directory to the declared log directory.

    Trainers log into the resume directory, not straight into Snakemake's declared outputs:
    Snakemake deletes the outputs of a failed job, and a resumed run would then continue from its
    checkpoint with the earlier part of its curves gone. Under torchrun only rank 0 has logs (and
    publishes them); the other ranks would race it.
    """
    if not is_main_process():
        return
    target = Path(log_dir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(work_logs, target)
