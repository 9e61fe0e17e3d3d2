"""seqgan/dvc_realign.py without DVC or Snakemake: when it acts, on which stages, and what it leaves.

tests/test_dvc.py runs the real operations end to end; here `dvc status` and `snakemake --touch`
are stand-ins that record what they were asked, on a dvc.lock written by hand:

    prepare -> train -> figure        (a chain)
    other                             (an unrelated stage)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from seqgan import dvc_realign as realign_module
from seqgan.dvc_realign import (
    CHILD_ENV,
    SKIP_ENV,
    LockedStage,
    describe,
    downstream_closure,
    locked_stages,
    out_of_order,
    realign,
    record_state,
    stage_targets,
    upstream_of,
)

BIG = 2_000_000  # bytes: above Snakemake's default checksum limit, so only times count
STAGES = {
    "prepare": ([], ["data/split.bin"], ["data/split.bin"]),
    "train": (
        ["data/split.bin", "code/train.py"],
        ["models/net.bin", "results/metrics.json", "results/curves"],
        ["models/net.bin"],
    ),
    "figure": (["models/net.bin"], ["results/fig.pdf"], ["results/fig.pdf"]),
    "other": ([], ["results/other.txt"], ["results/other.txt"]),
}


def write(path: Path, size: int, mtime_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, ns=(int(mtime_s * 10**9), int(mtime_s * 10**9)))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DVC project whose files were made in the DAG's order (times 1, 2, 3 ...)."""
    for variable in ("DVC_STAGE", CHILD_ENV, SKIP_ENV):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / ".dvc").mkdir()
    lock = {"schema": "2.0", "stages": {}}
    for name, (deps, outs, targets) in STAGES.items():
        cmd = f"snakemake --cores all --allowed-rules {name} -- {' '.join(targets)}"
        lock["stages"][name] = {
            "cmd": cmd,
            "deps": [{"path": d, "md5": "0"} for d in deps],
            "outs": [{"path": o, "md5": "0"} for o in outs],
        }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    write(tmp_path / "code/train.py", 100, 1)
    write(tmp_path / "data/split.bin", BIG, 2)
    write(tmp_path / "models/net.bin", BIG, 3)
    write(tmp_path / "results/metrics.json", 10, 3)
    write(tmp_path / "results/curves/loss.csv", 10, 3)
    write(tmp_path / "results/fig.pdf", BIG, 4)
    write(tmp_path / "results/other.txt", 10, 4)
    record_state(tmp_path)  # what Snakemake left after it made them
    return tmp_path


class Tools:
    """Stand-ins for `dvc status` (reports ``changed``) and `snakemake --touch` (records its calls)."""

    def __init__(self, changed: set[str] = frozenset()):
        self.changed = set(changed)
        self.status_calls = 0
        self.touches: list[tuple[list[str], bool]] = []

    def status(self, root: Path) -> set[str]:
        self.status_calls += 1
        return self.changed

    def touch(self, root: Path, targets: list[str], forceall: bool) -> None:
        self.touches.append((targets, forceall))

    def run(self, root: Path):
        return realign(root, changed=self.status, touch=self.touch)


def test_stage_targets_are_what_the_command_builds() -> None:
    assert stage_targets("snakemake --cores all --allowed-rules r -- a/b.pt 'c d.json'") == ("a/b.pt", "c d.json")
    assert stage_targets("python make.py") == ()


def test_upstream_and_downstream_follow_outputs_into_dependencies(project: Path) -> None:
    stages = locked_stages(project)
    upstream = upstream_of(stages)
    assert upstream == {"prepare": set(), "train": {"prepare"}, "figure": {"train"}, "other": set()}
    assert downstream_closure({"train"}, upstream) == {"train", "figure"}
    assert downstream_closure({"prepare"}, upstream) == {"prepare", "train", "figure"}


def test_nothing_moved_costs_no_dvc_and_no_touch(project: Path) -> None:
    tools = Tools()
    result = tools.run(project)
    assert result.stages == [] and tools.status_calls == 0 and tools.touches == []
    assert describe(result) is None


def test_a_restored_file_hands_the_up_to_date_stages_to_snakemakes_touch(project: Path) -> None:
    """A run-cache restore: the model is replaced by another version, made at another time (its
    cache entry's). Times stay in the DAG's order, but Snakemake's records no longer match the
    file: the snapshot sees it."""
    model = project / "models/net.bin"
    model.unlink()
    write(model, BIG, 3.5)
    assert not any(out_of_order(project, s) for s in locked_stages(project))
    tools = Tools()
    result = tools.run(project)
    assert tools.status_calls == 1
    assert tools.touches == [(["data/split.bin", "models/net.bin", "results/fig.pdf", "results/other.txt"], False)]
    assert sorted(result.stages) == ["figure", "other", "prepare", "train"] and "--touch" in describe(result)
    assert tools.run(project).stages == []  # the new state is recorded: the next start does nothing


def test_stages_dvc_reports_changed_and_their_downstream_are_left_alone(project: Path) -> None:
    """The model restored from another setting while params were edited too: DVC reports train
    changed, so train and the figure are left for both tools to rebuild."""
    write(project / "models/net.bin", BIG, 3.5)
    tools = Tools(changed={"train"})
    result = tools.run(project)
    assert sorted(result.stages) == ["other", "prepare"]
    assert tools.touches == [(["data/split.bin", "results/other.txt"], False)]


def test_an_input_newer_than_an_output_triggers_even_when_no_file_moved(project: Path) -> None:
    """Only inputs above the checksum limit count: Snakemake judges smaller ones by content."""
    stages = {s.name: s for s in locked_stages(project)}
    assert not out_of_order(project, stages["figure"])
    write(project / "models/net.bin", BIG, 8)
    assert out_of_order(project, stages["figure"])
    assert not out_of_order(project, stages["figure"], checksum_limit=BIG)
    # the job's benchmark file counts among its outputs; DVCLive's files beside them do not
    write(project / "models/net.bin", BIG, 3)
    write(project / "logs/benchmarks/figure.tsv", 10, 2)
    assert out_of_order(project, stages["figure"], job_files=lambda p: ["logs/benchmarks/figure.tsv"])
    # DVCLive's metrics beside the model: older than the split, but no job's output
    write(project / "results/metrics.json", 10, 1)
    only_model = lambda p: [] if p == "models/net.bin" else None  # noqa: E731
    assert not out_of_order(project, stages["train"], job_files=only_model)
    assert out_of_order(project, stages["train"])
    # a directory DVC tracks is no Snakemake file: only the snapshot watches it
    write(project / "results/metrics.json", 10, 3)
    write(project / "results/curves/loss.csv", 10, 1)
    assert not out_of_order(project, stages["train"])


def test_a_fresh_clone_touches_everything_once(project: Path) -> None:
    """No snapshot (a fresh clone after `dvc pull`): Snakemake has recorded nothing, so every stage
    that is up to date gets `--forceall`, which records its params and code."""
    (project / realign_module.SNAPSHOT).unlink()
    tools = Tools()
    result = tools.run(project)
    assert result.forced and tools.touches[0][1] is True and "--forceall" in describe(result)


@pytest.mark.parametrize(
    ("variable", "value"), [("DVC_STAGE", "train"), (CHILD_ENV, "1"), (SKIP_ENV, "1")], ids=["dvc", "child", "off"]
)
def test_it_never_acts_inside_dvc_its_own_touch_or_when_switched_off(project, monkeypatch, variable, value) -> None:
    write(project / "models/net.bin", BIG, 8)
    monkeypatch.setenv(variable, value)
    tools = Tools()
    result = tools.run(project)
    assert result.skipped and tools.status_calls == 0 and tools.touches == []


def test_record_state_is_no_snapshot_of_a_dvc_stage_run(project: Path, monkeypatch) -> None:
    """Inside `dvc repro`, a stage's Snakemake run must not record files DVC restored for other
    stages as known to Snakemake; nor a run with realigning switched off."""
    before = (project / realign_module.SNAPSHOT).read_text()
    write(project / "results/other.txt", 10, 7)
    for variable in ("DVC_STAGE", SKIP_ENV):
        monkeypatch.setenv(variable, "1")
        record_state(project)
        assert (project / realign_module.SNAPSHOT).read_text() == before
        monkeypatch.delenv(variable)
    record_state(project)
    assert (project / realign_module.SNAPSHOT).read_text() != before


def test_locked_stage_reads_paths_and_targets(project: Path) -> None:
    train = next(s for s in locked_stages(project) if s.name == "train")
    assert train == LockedStage(
        "train",
        ("data/split.bin", "code/train.py"),
        ("models/net.bin", "results/metrics.json", "results/curves"),
        ("models/net.bin",),
    )


def test_a_file_restored_inside_a_tracked_directory_moves_the_directorys_stat(project: Path) -> None:
    """DVC restores a file of a directory output by unlinking and linking it: the directory's own
    time changes, so one stat per directory watches a folder of any size."""
    loss = project / "results/curves/loss.csv"
    loss.unlink()
    write(loss, 10, 3)
    tools = Tools()
    assert "train" in tools.run(project).stages
