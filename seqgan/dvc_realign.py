"""Snakemake's view of the files DVC puts in place, realigned before Snakemake plans.

Snakemake reruns a job when an input is newer than the job's oldest output (its benchmark file
included). For inputs up to ``--max-checksum-file-size`` (1 MB by default) it first checks whether
the content differs from what the job read. It also reruns a job when the job's params or code
differ from what it recorded for the outputs (``.snakemake/metadata``). DVC compares content hashes
and knows nothing of either. What DVC writes into the workspace therefore looks like a change to
Snakemake, although DVC reports the pipeline up to date:

- files restored from the cache (``checkout``, a run-cache restore, ``exp apply``, ``pull``) carry
  the time of their cache entry or of the download, in DVC's order, not the DAG's;
- a restored file made under other params (a run-cache restore after setting a value back)
  contradicts the params Snakemake recorded when it last made that path;
- ``dvc commit`` of a file whose content is already cached links it to that entry, with the
  entry's time and inode.

At paper scale, Snakemake would then retrain for days what DVC reports up to date.

:func:`realign` runs when a Snakemake run starts: in the main process (the Snakefile calls it once
all rules exist), not inside a DVC stage's command, and not in the jobs of a cluster executor. It
costs a stat of each output path in ``dvc.lock`` (a directory, such as a folder of 50,000 samples,
counts once: DVC relinking a file inside changes the directory's time), compared with a snapshot of the state
Snakemake last left (``.snakemake/seqgan/dvc_outputs.json``, written after every successful run),
and it stops there when nothing moved and no stage has an input newer than its outputs. Otherwise
it asks DVC which stages are up to date (``dvc status``, by content hash, params and command). It
then runs ``snakemake --touch`` on the targets of the stages that are up to date and have no
changed stage upstream; ``--forceall`` is added the first time, when there is no snapshot, as in a
fresh clone, where Snakemake has recorded nothing. Snakemake's own touch gives those jobs'
outputs, benchmark files included, new times in the DAG's order, and records the current params
and code for them, as if it had just made them. It changes times and Snakemake's records, never a
file's content. A stage DVC reports changed, and everything downstream of it, is left alone, so
Snakemake plans what DVC plans.

With ``cache.type = hardlink,...`` (``.dvc/config``), ``dvc commit`` links each output into the
cache as it is (same inode, same time), so after a commit there is usually nothing to realign.
``tests/test_dvc.py`` runs every documented DVC operation and checks that both tools are idle
afterwards.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seqgan.artefacts.files import atomic_write_text

SKIP_ENV = "SEQGAN_NO_REALIGN"  # 1: leave Snakemake's view alone (see what it would do unaided)
CHILD_ENV = "SEQGAN_REALIGNING"  # set in the `snakemake --touch` that realign starts
SNAPSHOT = Path(".snakemake") / "seqgan" / "dvc_outputs.json"


@dataclass(frozen=True)
class LockedStage:
    """A stage of ``dvc.lock``: its dependency and output paths (files or directories) and the
    Snakemake targets its command builds."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass
class Realignment:
    """What :func:`realign` did: the stages it handed to ``snakemake --touch`` (none when nothing
    had moved), and why it looked at nothing (no DVC lock, inside a DVC stage, ...)."""

    stages: list[str] = field(default_factory=list)
    forced: bool = False
    skipped: str | None = None


def stage_targets(cmd: str) -> tuple[str, ...]:
    """The targets of a stage command ``snakemake ... -- <targets>`` (``seqgan dvc-yaml`` writes them)."""
    words = shlex.split(cmd)
    return tuple(words[words.index("--") + 1 :]) if "--" in words else ()


def locked_stages(root: Path) -> list[LockedStage]:
    """The stages of ``root/dvc.lock`` (empty when there is none)."""
    path = root / "dvc.lock"
    if not path.is_file():
        return []
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages") or {}
    return [
        LockedStage(
            name,
            tuple(d["path"] for d in entry.get("deps") or []),
            tuple(o["path"] for o in entry.get("outs") or []),
            stage_targets(str(entry.get("cmd", ""))),
        )
        for name, entry in stages.items()
    ]


def _overlap(path: str, other: str) -> bool:
    """Whether ``path`` is ``other``, lies under it, or contains it."""
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


def upstream_of(stages: list[LockedStage]) -> dict[str, set[str]]:
    """Each stage's producers: the stages with an output among its dependencies."""
    return {
        s.name: {p.name for p in stages if p is not s and any(_overlap(d, o) for d in s.deps for o in p.outs)}
        for s in stages
    }


def downstream_closure(names: set[str], upstream: dict[str, set[str]]) -> set[str]:
    """``names`` and every stage that depends on one of them, directly or not."""
    closed = set(names)
    grew = True
    while grew:
        grew = False
        for stage, producers in upstream.items():
            if stage not in closed and producers & closed:
                closed.add(stage)
                grew = True
    return closed


# What Snakemake makes of a DVC output path: None where no rule makes it (DVCLive's files beside a
# run's declared outputs), else the other files Snakemake counts among that job's outputs (its
# benchmark file, which DVC does not know).
JobFiles = Callable[[str], list[str] | None]


def every_out_counts(path: str) -> list[str] | None:
    return []


def _file_stat(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def out_of_order(
    root: Path, stage: LockedStage, job_files: JobFiles = every_out_counts, checksum_limit: int = 1_000_000
) -> bool:
    """Whether a dependency of ``stage`` larger than ``checksum_limit`` is newer than one of the
    files Snakemake counts as its job's outputs: what makes Snakemake rerun a job. Snakemake judges
    smaller dependencies by content once it has recorded their checksums (``--max-checksum-file-size``).
    Only files count: Snakemake's inputs and outputs are files, and a directory DVC tracks (a sample
    folder of 50,000 images) is left to the snapshot, which costs one stat for it.
    A stage with an output missing is left to the tools."""
    if not stage.outs or not all((root / o).exists() for o in stage.outs):
        return False
    deps = [st.st_mtime_ns for d in stage.deps if (st := _file_stat(root / d)) and st.st_size > checksum_limit]
    counted = {o: job_files(o) for o in stage.outs}
    outs = [o for o, extra in counted.items() if extra is not None]
    outs += [c for extra in counted.values() for c in extra or []]
    times = [st.st_mtime_ns for o in outs if (st := _file_stat(root / o))]
    return bool(deps and times) and max(deps) > min(times)


def snapshot(root: Path, stages: list[LockedStage]) -> dict[str, list[int]]:
    """``{path: [inode, mtime_ns, size]}`` of every output path of the stages, a directory by its
    own stat: what changes when DVC links, copies or restores a file (relinking a file inside a
    directory changes the directory's time)."""
    state = {}
    for stage in stages:
        for out in stage.outs:
            try:
                st = (root / out).stat()
            except OSError:
                continue
            state[out] = [st.st_ino, st.st_mtime_ns, st.st_size]
    return state


def load_snapshot(root: Path) -> dict[str, list[int]] | None:
    path = root / SNAPSHOT
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save_snapshot(root: Path, state: dict[str, list[int]]) -> None:
    atomic_write_text(root / SNAPSHOT, json.dumps(state, sort_keys=True))


def not_here() -> str | None:
    """Why neither the realignment nor the snapshot may run in this process, or None."""
    if os.environ.get("DVC_STAGE"):
        return "inside a DVC stage's command: DVC keeps its own books"
    if os.environ.get(CHILD_ENV):
        return "realign's own touch"
    if os.environ.get(SKIP_ENV) == "1":
        return f"{SKIP_ENV}=1"
    return None


def record_state(root: Path) -> None:
    """After a successful Snakemake run (``onsuccess``): the outputs as Snakemake now knows them.
    Not inside a DVC stage's command (DVC may still restore other stages' files in the same
    ``dvc repro``), not in realign's own touch, not while realigning is switched off (what DVC
    moved meanwhile must still be seen later), and not without a DVC project."""
    if not_here() is None and (root / ".dvc").is_dir():
        save_snapshot(root, snapshot(root, locked_stages(root)))


def dvc_changed_stages(root: Path) -> set[str]:
    """The stages ``dvc status`` reports changed (by content hash, params or command)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return set(repo.status())


def snakemake_touch(root: Path, targets: list[str], forceall: bool) -> None:
    """``snakemake --touch`` of ``targets`` in ``root``: new times in the DAG's order and the
    current params and code recorded, for the jobs Snakemake would rerun (all of them with
    ``--forceall``). No hooks: no preflight, no snapshot of its own."""
    command = [sys.executable, "-m", "snakemake", "--touch", "--cores", "1", "--no-hooks", "--quiet", "all"]
    command += ["--forceall"] if forceall else []
    result = subprocess.run(
        [*command, "--", *targets],
        cwd=root,
        env={**os.environ, CHILD_ENV: "1"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`snakemake --touch` failed ({result.returncode}):\n{result.stderr[-3000:]}")


def realign(
    root: Path,
    job_files: JobFiles = every_out_counts,
    checksum_limit: int = 1_000_000,
    changed: Callable[[Path], set[str]] = dvc_changed_stages,
    touch: Callable[[Path, list[str], bool], None] = snakemake_touch,
) -> Realignment:
    """Hand the stages that DVC reports up to date, with nothing changed upstream, to Snakemake's
    touch when DVC has moved files since Snakemake last saw them or an input is newer than an output."""
    if why := not_here():
        return Realignment(skipped=why)
    stages = locked_stages(root)
    if not (root / ".dvc").is_dir() or not stages:
        return Realignment(skipped="no DVC project with a dvc.lock")
    previous = load_snapshot(root)
    current = snapshot(root, stages)
    if previous == current and not any(out_of_order(root, s, job_files, checksum_limit) for s in stages):
        return Realignment()  # the common case: a stat per output path, no DVC, no subprocess
    upstream = upstream_of(stages)
    blocked = downstream_closure(changed(root) & set(upstream), upstream)
    eligible = [s for s in stages if s.name not in blocked and s.targets]
    result = Realignment(stages=[s.name for s in eligible], forced=previous is None)
    if eligible:
        touch(root, sorted({t for s in eligible for t in s.targets}), result.forced)
    # eligible stages as Snakemake now knows them; the others keep their old entries, so a
    # later start looks at them again
    kept = {s.name for s in eligible}
    state = dict(previous or {})
    state.update(snapshot(root, [s for s in stages if s.name in kept]))
    save_snapshot(root, state)
    return result


def describe(result: Realignment) -> str | None:
    """One line for Snakemake's log, or None when nothing was done."""
    if not result.stages:
        return None
    shown = ", ".join(result.stages[:5]) + (f" and {len(result.stages) - 5} more" if len(result.stages) > 5 else "")
    how = "--touch --forceall (no earlier snapshot)" if result.forced else "--touch"
    return (
        f"seqgan: DVC linked or restored outputs since Snakemake last ran: `snakemake {how}` aligned "
        f"{len(result.stages)} stage(s) that `dvc status` reports up to date ({shown}); times and "
        f"Snakemake's records only, no content (seqgan/dvc_realign.py; {SKIP_ENV}=1 turns this off)"
    )
