"""DVC over the Snakemake workflow, end to end in a temporary git + DVC repository.

The repository holds a copy of the workflow (Snakefile, workflow/, seqgan/), a
seconds-scale params.yaml (tests/test_workflow.py's tiny pipeline with one alpha and no control:
what DVC does is the same for every stage, and tests/test_dvc_yaml.py checks every stage of the
full sweep, controls included, against Snakemake's DAG without running it),
the dvc.yaml `seqgan dvc-yaml` generates for it and a local-directory DVC remote. One
`dvc repro fig2_val_loss` builds it (module fixture); the tests then change parameters and check
what DVC reruns, restores, records and ships. They run in file order and each leaves the repository
as it found it, except the last.

After every documented DVC operation (repro after an edit, a run-cache restore, checkout, an
experiment run and `exp apply`, push and pull into a fresh clone, commit after a direct Snakemake
run, also of a whole workspace that Snakemake built) `snakemake -n` plans nothing and `dvc status`
is clean, without a `snakemake --touch` (`both_idle`; seqgan/dvc_realign.py and the hard-link-first
cache type make the two agree).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_workflow import tiny_pipeline_params

from seqgan.dvc_yaml import write_dvc_yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ALPHA = 1.0  # the one alpha (phase 2 starts from it): stage names @1.0-0
LR, LR_CHANGED, LR_EXPERIMENT = 0.0005, 0.002, 0.001
TRAIN_STAGES = {f"train_ar@base-{ALPHA}-0"}
UP_TO_DATE = "Data and pipelines are up to date."
GENERATION_STAGE = f"eval_samples@ar-{ALPHA}-0"
GENERATION_TARGET = f"results/metrics/generation/ar/base/alpha{ALPHA}/phase1/seed0.json"
BUILT = ("results/fig2_val_loss.pdf", GENERATION_TARGET)  # what the fixture builds (and its upstream)


@dataclass
class Project:
    repo: Path
    remote: Path
    env: dict[str, str]
    first_lock: dict
    first_repro: str
    first_repro_s: float


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"`{' '.join(args)}` failed in {cwd} (exit {result.returncode}):\n{output[-6000:]}")
    return output


def dvc(p: Project, *args: str, cwd: Path | None = None) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd or p.repo, p.env)


def git(p: Project, *args: str, cwd: Path | None = None) -> str:
    return _run(["git", *args], cwd or p.repo, p.env)


def snakemake(p: Project, *args: str, cwd: Path | None = None) -> str:
    return _run([sys.executable, "-m", "snakemake", *args], cwd or p.repo, p.env)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def restored(output: str) -> set[str]:
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run, checking out outputs", output))


def status(p: Project, *args: str, cwd: Path | None = None) -> str:
    """`dvc status` of Fig. 2 and everything upstream (the stages this module builds)."""
    return dvc(p, "status", *args, "--with-deps", "fig2_val_loss", cwd=cwd)


def changed_stages(p: Project) -> set[str]:
    return set(json.loads(status(p, "--json")))


def both_idle(p: Project, targets: tuple[str, ...] = (), cwd: Path | None = None) -> None:
    """Neither tool has anything to do: `snakemake -n` plans nothing for ``targets`` (default: what
    the fixture built) and `dvc status` of their stages is clean."""
    targets = targets or BUILT
    plan = snakemake(p, "-n", *targets, cwd=cwd)
    assert "Nothing to be done" in plan, plan[-4000:]
    stages = ["fig2_val_loss"] + ([GENERATION_STAGE] if GENERATION_TARGET in targets else [])
    assert json.loads(dvc(p, "status", "--json", "--with-deps", *stages, cwd=cwd)) == {}


def write_params(p: Project, lr: float) -> None:
    params = yaml.safe_load((p.repo / "params.yaml").read_text())
    params["transformer"]["optimizer"]["lr"] = lr
    (p.repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))  # block style


def lock(p: Project) -> dict:
    return yaml.safe_load((p.repo / "dvc.lock").read_text())


def out_hashes(lock_data: dict, stages: set[str] | None = None) -> dict[str, str]:
    return {
        out["path"]: out["md5"]
        for name, stage in lock_data["stages"].items()
        if stages is None or name in stages
        for out in stage.get("outs", [])
    }


def tiny_params() -> dict:
    raw = tiny_pipeline_params()
    raw["tokenizer"]["alphas"] = [ALPHA]
    raw["tokenizer"]["control_no_perceptual"] = False  # a quarter fewer jobs in every DVC run below
    raw["tokenizer"]["phase2"]["from_alpha"] = ALPHA
    raw["transformer"]["optimizer"]["lr"] = LR
    return raw


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    base = tmp_path_factory.mktemp("dvc_project")
    repo, remote = base / "repo", base / "remote"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("Snakefile", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    for name in ("workflow", "seqgan"):
        shutil.copytree(ROOT / name, repo / name, symlinks=True, ignore=ignore)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    write_dvc_yaml(ROOT, repo / "params.yaml", repo / "dvc.yaml")  # what `seqgan dvc-yaml` writes for them

    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the stages call `snakemake`
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(base / "dvc_global"),
        "DVC_SYSTEM_CONFIG_DIR": str(base / "dvc_system"),
        "DVC_SITE_CACHE_DIR": str(base / "dvc_site_cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    p = Project(repo, remote, env, {}, "", 0.0)
    git(p, "init", "-q")
    git(p, "config", "user.name", "seqgan tests")
    git(p, "config", "user.email", "tests@example.invalid")
    git(p, "config", "commit.gpgsign", "false")
    dvc(p, "init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the project's cache type (links)
    dvc(p, "config", "core.analytics", "false")
    dvc(p, "config", "core.check_update", "false")
    dvc(p, "remote", "add", "-d", "local", str(remote))
    git(p, "add", "-A")
    git(p, "commit", "-q", "-m", "workflow")

    start = time.monotonic()
    p.first_repro = dvc(p, "repro", "fig2_val_loss")
    p.first_repro_s = time.monotonic() - start
    print(f"\nfirst `dvc repro fig2_val_loss`: {p.first_repro_s:.0f} s")
    dvc(p, "repro", GENERATION_STAGE)  # one sample set and its metrics, for the sampling-key checks
    git(p, "add", "-A")
    git(p, "commit", "-q", "-m", "first run")
    p.first_lock = lock(p)
    return p


def test_repro_builds_fig2_and_tracks_every_output(project):
    p = project
    expected = {
        "prepare_data",
        "train_semantic",
        "train_judge",
        "fid_reference@val",
        "fig2_val_loss",
        f"tokenizer_phase1@{ALPHA}-0",
        f"eval_tokenizer@{ALPHA}-0",
        f"encode_tokens@{ALPHA}-0",
        *TRAIN_STAGES,
    }
    assert ran(p.first_repro) == expected  # fig2's upstream and nothing else (no phase 2, no samples)

    table = (p.repo / "results/fig2_val_loss.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in table[1:]] == [f"alpha{ALPHA}"]
    assert (p.repo / "results/fig2_val_loss.pdf").stat().st_size > 0
    assert status(p).strip().endswith(UP_TO_DATE)
    both_idle(p)  # DVC ran Snakemake stage by stage and committed each: Snakemake agrees
    assert git(p, "status", "--porcelain").strip() == ""  # outputs stay out of git, no stray .gitignore

    # Every file the stages wrote is a DVC out (or inside one): a run-cache restore brings back all of
    # it, including DVCLive's files beside the declared curves.
    outs = [out["path"] for stage in p.first_lock["stages"].values() for out in stage.get("outs", [])]
    written = [
        f.relative_to(p.repo).as_posix()
        for top in ("data", "models", "results")
        for f in (p.repo / top).rglob("*")
        if f.is_file()
    ]
    untracked = [f for f in written if not any(f == o or f.startswith(o + "/") for o in outs)]
    assert written and untracked == []
    for stage in TRAIN_STAGES:  # training runs: cached outs, metrics and curves, no persist
        entry = p.first_lock["stages"][stage]
        assert {"transformer.optimizer"} <= set(entry["params"]["params.yaml"])
        assert any(o["path"].endswith("/metrics.json") for o in entry["outs"])


def test_lr_change_reruns_only_transformers_and_old_setting_comes_from_run_cache(project):
    p = project
    write_params(p, LR_CHANGED)
    assert changed_stages(p) == TRAIN_STAGES  # not the data, the semantic net or the tokenizers
    output = dvc(p, "repro", "fig2_val_loss")
    assert ran(output) == TRAIN_STAGES | {"fig2_val_loss"}
    changed = out_hashes(lock(p), TRAIN_STAGES)
    assert all(changed[k] != v for k, v in out_hashes(p.first_lock, TRAIN_STAGES).items() if k.endswith(".safetensors"))
    both_idle(p, ("results/fig2_val_loss.pdf",))  # (the sample set reads the retrained model: stale in both)

    train_logs = sorted((p.repo / "logs/train_ar").rglob("*.log"))
    log_times = [f.stat().st_mtime_ns for f in train_logs]
    write_params(p, LR)
    start = time.monotonic()
    output = dvc(p, "repro", "fig2_val_loss")
    restore_s = time.monotonic() - start
    print(f"\nrestoring the first setting from the run cache: {restore_s:.1f} s")
    assert ran(output) == set()
    assert restored(output) == TRAIN_STAGES | {"fig2_val_loss"}
    assert [f.stat().st_mtime_ns for f in train_logs] == log_times  # no training job ran
    assert out_hashes(lock(p)) == out_hashes(p.first_lock)  # the first run's outputs, byte for byte
    assert status(p).strip().endswith(UP_TO_DATE)
    assert git(p, "status", "--porcelain").strip() == ""
    both_idle(p)  # the restored files carry their cache entries' times, not the DAG's


# ----------------------------------------------------------------------------------------------
# Rebuild exactly what changed: each kind of edit on the completed workspace, Snakemake's plan and
# DVC's status side by side (seqgan/runs.py declares what shapes each rule)
# ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    rules: set[str]  # rules of every job Snakemake would run
    jobs: list[tuple[str, str]]  # (rule, first output) per job


def snakemake_plan(p: Project) -> Plan:
    """`snakemake -n` over what the fixture built, parsed per job (rule and first output)."""
    out = snakemake(p, "-n", *BUILT)
    plan = Plan(set(), [])
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if not head or head.group(1) == "all":
            continue
        output = re.search(r"^\s+output: ([^,\n]+)", block, re.M)
        plan.rules.add(head.group(1))
        plan.jobs.append((head.group(1), output.group(1).strip() if output else ""))
    return plan


def stage_of(lock_data: dict, path: str) -> str:
    for name, stage in lock_data["stages"].items():
        for out in stage.get("outs", []):
            if path == out["path"] or path.startswith(out["path"] + "/"):
                return name
    raise AssertionError(f"no stage of dvc.lock has the out {path}")


def dvc_changed(p: Project) -> set[str]:
    return set(json.loads(dvc(p, "status", "--json", "--with-deps", "fig2_val_loss", GENERATION_STAGE)))


def check_edit(p: Project, plan_rules: set[str], direct: set[str]) -> None:
    """Snakemake plans the jobs of ``plan_rules``, and DVC's changed stages are exactly the stages of
    its jobs of the ``direct`` rules (those the edit shapes; the rest rerun because their inputs do)."""
    plan = snakemake_plan(p)
    assert plan.rules == plan_rules
    assert dvc_changed(p) == {stage_of(p.first_lock, out) for rule, out in plan.jobs if rule in direct}


def edit_params(p: Project, key: str, value) -> None:
    params = yaml.safe_load((p.repo / "params.yaml").read_text())
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    assert node[last] != value
    node[last] = value
    (p.repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def restore(p: Project, path: str, text: str, stat: os.stat_result) -> None:
    """Put a file back as it was, modification time included (Snakemake compares times)."""
    (p.repo / path).write_text(text)
    os.utime(p.repo / path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture(scope="module")
def settled(project) -> Project:
    """The workspace after the run-cache restore, with nothing to do for either tool (no touch)."""
    assert snakemake_plan(project).rules == set() and dvc_changed(project) == set()
    return project


GENERATION = {"sample", "eval_samples"}
# The rules of the jobs the fixture ran (fig2's upstream and one sample set with its metrics).
BUILT_RULES = {
    "prepare_data",
    "train_semantic",
    "train_judge",
    "tokenizer_phase1",
    "fid_reference",
    "eval_tokenizer",
    "encode_tokens",
    "train_ar",
    "fig2_val_loss",
    "sample",
    "eval_samples",
}
AFTER_TRAINING = {"train_ar", "fig2_val_loss", *GENERATION}


@pytest.mark.parametrize(
    ("key", "value", "plan_rules", "direct"),
    [
        ("transformer.ar.top_p", 0.9, GENERATION, {"sample"}),  # sampling: no training
        ("transformer.nar.steps", 6, set(), set()),  # NAR is not trained here: nothing reads it
        ("transformer.sizes.large.dim", 64, set(), set()),  # only the base model exists
        ("transformer.optimizer.beta2", 0.95, AFTER_TRAINING, {"train_ar"}),
        (
            "tokenizer.phase1.lr",
            0.002,  # params.yaml's is 0.001
            {"tokenizer_phase1", "encode_tokens", "eval_tokenizer", *AFTER_TRAINING},
            {"tokenizer_phase1"},
        ),
        ("evaluation.verdicts.confident_probability", 0.6, {"eval_samples"}, {"eval_samples"}),
        ("run.accumulation_steps", 2, set(), set()),  # an execution setting: rounding, not the computation
    ],
)
def test_a_params_edit_reruns_exactly_what_it_shapes(settled, key, value, plan_rules, direct):
    p = settled
    text = (p.repo / "params.yaml").read_text()
    try:
        edit_params(p, key, value)
        check_edit(p, plan_rules, direct)
    finally:
        (p.repo / "params.yaml").write_text(text)


@pytest.mark.parametrize(
    ("module", "plan_rules", "direct"),
    [
        (
            "seqgan/evaluate/fid.py",
            {"fid_reference", "eval_tokenizer", "eval_samples", "fig2_val_loss"},
            {"fid_reference", "eval_tokenizer", "eval_samples"},
        ),  # no training, no encoding
        ("seqgan/sample/ar.py", GENERATION, {"sample"}),  # no training
        ("seqgan/train/transformer.py", AFTER_TRAINING, {"train_ar", "sample"}),
        ("seqgan/cli.py", set(), set()),  # parses and dispatches: shapes no output
    ],
)
def test_a_comment_in_a_module_reruns_the_rules_that_declare_it(settled, module, plan_rules, direct):
    from seqgan.runs import DECLARATIONS

    p = settled
    path = p.repo / module
    text, stat = path.read_text(), path.stat()
    try:
        path.write_text(text + "# an appended comment\n")
        check_edit(p, plan_rules, direct)
        assert direct == {rule for rule in BUILT_RULES if module in DECLARATIONS[rule].modules}
    finally:
        restore(p, module, text, stat)


def test_the_edits_above_leave_both_tools_idle(settled):
    """Each case puts its file back as it found it (the next case's exact plan would see a leftover);
    after the last, neither tool has anything to do."""
    assert snakemake_plan(settled).rules == set() and dvc_changed(settled) == set()


def test_linked_cache_files_never_change(project):
    """The cache links outs (reflink or hardlink): after reruns, run-cache restores and checkouts,
    every cached file still has the content its name (its MD5) says -- no writer wrote through a link."""
    import hashlib

    p = project
    assert "hardlink" in dvc(p, "config", "cache.type")
    objects = [f for f in (p.repo / ".dvc" / "cache" / "files" / "md5").rglob("*") if f.is_file()]
    assert len(objects) > 20
    for f in objects:
        name = f.parent.name + f.name.removesuffix(".dir")
        assert hashlib.md5(f.read_bytes()).hexdigest() == name, f
    model = p.repo / f"models/transformer/ar/base/alpha{ALPHA}/seed0/model.safetensors"
    digest = hashlib.md5(model.read_bytes()).hexdigest()
    cached = p.repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    assert cached.is_file()
    if model.stat().st_nlink > 1:  # hardlinked (no reflink on this file system): one inode, no copy
        assert model.stat().st_ino == cached.stat().st_ino


def test_snakemake_build_then_dvc_commit_plans_nothing(project, tmp_path):
    """docs/dvc.md's sequence for a direct (cluster) run, on a whole workspace: in a fresh clone,
    Snakemake builds everything from nothing, `dvc commit -f` records it, and then neither tool has
    anything to do. Before the hard-link-first cache, the commit gave every output a new time and
    `snakemake -n` planned 18 jobs here."""
    p = project
    clone = tmp_path / "built"
    git(p, "clone", "-q", str(p.repo), str(clone), cwd=tmp_path)
    snakemake(p, "--cores", "2", *BUILT, cwd=clone)
    assert "Nothing to be done" in snakemake(p, "-n", *BUILT, cwd=clone)
    dvc(p, "commit", "-f", "--with-deps", "fig2_val_loss", GENERATION_STAGE, cwd=clone)
    both_idle(p, cwd=clone)


def test_checkout_of_a_deleted_output_leaves_both_tools_idle(project):
    p = project
    model = p.repo / f"models/transformer/ar/base/alpha{ALPHA}/seed0/model.safetensors"
    model.unlink()
    assert changed_stages(p) == {f"train_ar@base-{ALPHA}-0"}
    dvc(p, "checkout", "--with-deps", "fig2_val_loss")
    assert model.is_file()
    both_idle(p)


def test_exp_run_with_set_param_lists_the_metrics(project):
    p = project
    output = dvc(p, "exp", "run", "-S", f"transformer.optimizer.lr={LR_EXPERIMENT}", "fig2_val_loss")
    assert ran(output) == TRAIN_STAGES | {"fig2_val_loss"}
    both_idle(p, ("results/fig2_val_loss.pdf",))  # the experiment's results are in the workspace
    shown = json.loads(dvc(p, "exp", "show", "--json"))
    # Rows: the workspace, the commit (baseline) and, under it, the experiment.
    rows = {row["name"] or row["rev"]: row["data"] for row in shown}
    rows.update({e["name"]: e["data"] for row in shown for exp in row.get("experiments") or [] for e in exp["revs"]})
    by_lr = {
        data["params"]["params.yaml"]["data"]["transformer"]["optimizer"]["lr"]: data["metrics"]
        for name, data in rows.items()
        if name != "workspace"
    }
    assert set(by_lr) == {LR, LR_EXPERIMENT}
    curve_metrics = f"results/curves/transformer/ar/base/alpha{ALPHA}/seed0/metrics.json"
    tokenizer_metrics = f"results/metrics/tokenizer/phase1/alpha{ALPHA}/seed0.json"
    base, exp = by_lr[LR], by_lr[LR_EXPERIMENT]
    assert exp[tokenizer_metrics]["data"]["codebook_usage"] == base[tokenizer_metrics]["data"]["codebook_usage"]
    assert exp[curve_metrics]["data"]["val_loss"] != base[curve_metrics]["data"]["val_loss"]

    git(p, "checkout", "--", "params.yaml", "dvc.lock")  # back to the committed setting
    dvc(p, "checkout", "--force", "--with-deps", "fig2_val_loss")
    assert status(p).strip().endswith(UP_TO_DATE)
    both_idle(p)

    # bring the experiment into the workspace, then go back to the commit
    (experiment,) = (name for name, data in rows.items() if name not in ("workspace", *baseline_names(shown)))
    apply_experiment(p, experiment)
    assert yaml.safe_load((p.repo / "params.yaml").read_text())["transformer"]["optimizer"]["lr"] == LR_EXPERIMENT
    both_idle(p, ("results/fig2_val_loss.pdf",))
    git(p, "checkout", "--", "params.yaml", "dvc.lock")
    dvc(p, "checkout", "--force", "--with-deps", "fig2_val_loss")
    both_idle(p)


def apply_experiment(p: Project, name: str) -> None:
    """`dvc exp apply`. It checks out every stage of dvc.yaml: in a workspace built only up to Fig. 2
    it lists the outputs of stages never built under "Checkout failed" and exits non-zero, after
    applying the experiment. Nothing else may fail."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "apply", name], cwd=p.repo, env=p.env, capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        listed = output.split("Checkout failed for following targets:")[1].split("Is your cache up to date?")[0]
        failed = set(listed.split())
        built = {out["path"] for stage in lock(p)["stages"].values() for out in stage.get("outs", [])}
        assert failed and not failed & built, output[-4000:]


def baseline_names(shown: list[dict]) -> set[str]:
    """The names `dvc exp show --json` gives the workspace's commits (rows that are no experiment)."""
    return {row["name"] or row["rev"] for row in shown}


def documented_views() -> list[str]:
    """The commands of docs/dvc.md's readable views of params and metrics (its dvc-readable-views
    block), one per line, without their comments."""
    text = (ROOT / "docs" / "dvc.md").read_text()
    block = text.split("<!-- dvc-readable-views -->")[1].split("<!-- /dvc-readable-views -->")[0]
    code = re.search(r"```bash\n(.*?)```", block, flags=re.S)
    assert code, "docs/dvc.md: the dvc-readable-views block holds no ```bash block"
    return [line.split("  #")[0].strip() for line in code.group(1).splitlines() if line.strip()]


def table_columns(output: str) -> int:
    """Columns of the widest Markdown table row in ``output``."""
    return max((line.count("|") - 1 for line in output.splitlines() if line.startswith("|")), default=0)


def experiment_name(p: Project) -> str:
    """An experiment of the workspace (the one test_exp_run_with_set_param_lists_the_metrics ran; run
    here when this test runs alone)."""
    names = dvc(p, "exp", "list", "--name-only").split()
    if names:
        return names[0]
    dvc(p, "exp", "run", "-S", f"transformer.optimizer.lr={LR_EXPERIMENT}", "fig2_val_loss")
    git(p, "checkout", "--", "params.yaml", "dvc.lock")
    dvc(p, "checkout", "--force", "--with-deps", "fig2_val_loss")
    return experiment_name(p)


def test_documented_readable_views_print_narrow_tables(project):
    """docs/dvc.md's readable views, run exactly as written there (an experiment's name for
    `<name>`): each succeeds and prints Markdown tables of at most 40 columns, where plain
    `dvc exp show` prints one column per param, dependency and metrics key (hundreds here)."""
    p = project
    name = experiment_name(p)
    commands = documented_views()
    assert len(commands) >= 3 and all(c.startswith("dvc ") for c in commands), commands
    for command in commands:
        output = dvc(p, *shlex.split(command.replace("<name>", name))[1:])
        assert 0 < table_columns(output) <= 40, f"`{command}` printed:\n{output[-3000:]}"
    assert len(dvc(p, "exp", "show", "--csv").splitlines()[0].split(",")) > 100  # what the views are for


def test_push_then_fresh_clone_pull_leaves_both_tools_idle(project, tmp_path):
    p = project
    dvc(p, "push", "--with-deps", "fig2_val_loss")  # only what was built (plain `dvc push` after a full repro)
    clone = tmp_path / "clone"
    git(p, "clone", "-q", str(p.repo), str(clone), cwd=tmp_path)
    dvc(p, "pull", "--with-deps", "fig2_val_loss", cwd=clone)
    assert (clone / "results/fig2_val_loss.pdf").read_bytes() == (p.repo / "results/fig2_val_loss.pdf").read_bytes()
    assert status(p, cwd=clone).strip().endswith(UP_TO_DATE)
    # files arrive in any order, with the pull's times: Snakemake must still plan nothing, no touch
    both_idle(p, ("results/fig2_val_loss.pdf",), cwd=clone)


def test_direct_snakemake_run_then_dvc_commit_leaves_status_clean(project):
    p = project
    write_params(p, LR_CHANGED * 2)
    plan = snakemake(p, "-n", "--quiet", "rules", "--", "results/fig2_val_loss.pdf")
    planned = {
        line.split()[0]
        for line in plan.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit() and line.split()[0] not in {"job", "total"}
    }
    assert planned == {"train_ar", "fig2_val_loss"}
    snakemake(p, "--cores", "2", "results/fig2_val_loss.pdf")  # e.g. on a cluster, outside DVC
    assert changed_stages(p) == TRAIN_STAGES | {"fig2_val_loss"}
    dvc(p, "commit", "-f", "--with-deps", "fig2_val_loss")
    assert status(p).strip().endswith(UP_TO_DATE)
    assert out_hashes(lock(p), TRAIN_STAGES) != out_hashes(p.first_lock, TRAIN_STAGES)
    both_idle(p, ("results/fig2_val_loss.pdf",))
