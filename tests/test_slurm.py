"""The workflow on a real SLURM cluster through Snakemake's SLURM executor (never a mock).

The cluster is the single-node one of tests/cluster/start_slurm.sh (munge, slurmctld, slurmd on
this machine; .ci/run starts it before the suite and stops it after). When it is not up and cannot
be started here (no root, no packages), every test below is skipped with the reason.

The profile is the real ``workflow/profiles/slurm``, with only what a test cluster must change
(:func:`cluster_profile`): the partition names, CPU and memory requests capped to the one
node, no GPUs (the CPU-only variant: the training rules' own ``gpu`` request is set to 0), and job
status read with ``squeue`` (no accounting database here; slurm.conf keeps finished jobs visible
for 10 minutes). Executor, retries, ``tasks_per_gpu``, runtimes and the rest are the profile's.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from snakemake_probe import localrules
from test_workflow import tiny_pipeline_params

from seqgan.artefacts.checkpoints import load_weights

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
STATE = Path(os.environ.get("SEQGAN_SLURM_STATE", "/tmp/seqgan-slurm"))  # as the cluster scripts
START = ROOT / "tests" / "cluster" / "start_slurm.sh"
STOP = ROOT / "tests" / "cluster" / "stop_slurm.sh"
PARTITION = "debug"
JOB_MEM_MB = 2000
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> dict[str, int]:
    """The running test cluster's node size; starts it when it is not up (and stops it after).
    Skips, with the reason, where it cannot run (as .ci/run's start recorded, or trying now)."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    previous_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(STATE / "slurm.conf")  # the clients (and the jobs) find this cluster
    started_here = False
    try:
        if (STATE / "unavailable").is_file():
            pytest.skip(f"no SLURM test cluster: {(STATE / 'unavailable').read_text().strip()}")
        up = (STATE / "ready").is_file() and shutil.which("sinfo") is not None
        if not up or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
            try:
                result = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
            except subprocess.TimeoutExpired:
                pytest.skip("no SLURM test cluster: tests/cluster/start_slurm.sh took over 900 s")
            if result.returncode != 0:
                reason = (STATE / "unavailable").read_text().strip() if (STATE / "unavailable").is_file() else ""
                pytest.skip(f"no SLURM test cluster: {reason or result.stdout[-500:] + result.stderr[-500:]}")
            started_here = True
        node = subprocess.run(["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True, check=True)
        cpus, mem = (int(v) for v in node.stdout.split()[:2])
        yield {"cpus": cpus, "mem_mb": mem}
    finally:
        if started_here:
            subprocess.run(["bash", str(STOP)], capture_output=True, timeout=120)
        if previous_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous_conf


def test_without_root_the_cluster_script_says_why_and_starts_nothing() -> None:
    """The skip path: start_slurm.sh run by an unprivileged user exits 2 with its reason."""
    scratch = Path(tempfile.mkdtemp(prefix="seqgan-slurm-state-"))  # outside pytest's 0700 folders
    scratch.chmod(0o777)
    state = scratch / "state"
    script = scratch / "start_slurm.sh"  # a copy the unprivileged user can read (a checkout may be 0700)
    shutil.copyfile(START, script)
    script.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SEQGAN_SLURM_STATE": str(state)}
    command = ["bash", str(script)]
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("root without runuser: cannot run the script unprivileged")
        command = ["runuser", "-u", "nobody", "--", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "slurm: unavailable: not root" in result.stdout
        assert (state / "unavailable").read_text().startswith("not root")
        assert not (state / "slurm.conf").exists()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_cluster_script_leaves_another_slurm_configuration_alone(tmp_path: Path) -> None:
    """Where SLURM's default config path holds a file the script did not link, it exits 2 with
    the reason and the file unchanged (checked before anything starts)."""
    if os.geteuid() != 0:
        pytest.skip("not root: the start script stops earlier (tested above)")
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed and this test installs nothing")
    foreign = tmp_path / "slurm.conf"
    foreign.write_text("ClusterName=someone-else\n")
    env = {**os.environ, "SEQGAN_SLURM_STATE": str(tmp_path / "state"), "SEQGAN_SLURM_DEFAULT_CONF": str(foreign)}
    result = subprocess.run(["bash", str(START)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"slurm: unavailable: {foreign} exists and is not this script's link" in result.stdout
    assert foreign.read_text() == "ClusterName=someone-else\n"
    assert not (tmp_path / "state" / "slurm.conf").exists()


def cluster_profile(dest: Path, node_cpus: int, overrides: dict | None = None) -> Path:
    """``workflow/profiles/slurm`` for the test cluster: partitions -> the one partition, CPU
    requests capped to half the node and memory to 2 GB (two jobs side by side), gpu 0 for every
    rule (CPU-only), squeue for job status, status checks from 1 s (the plugin's default first
    check comes after 40 s), successful jobs' SLURM logs kept (the test reads them).
    ``overrides``: rule -> resources to set on top."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = profile["default-resources"]
    defaults["slurm_partition"] = PARTITION
    defaults["mem_mb"] = min(defaults["mem_mb"], JOB_MEM_MB)
    for rule, resources in profile["set-resources"].items():
        if "slurm_partition" in resources:
            resources["slurm_partition"] = PARTITION
        if "cpus_per_task" in resources:  # two jobs side by side on the node
            resources["cpus_per_task"] = min(resources["cpus_per_task"], max(1, node_cpus // 2))
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], JOB_MEM_MB)
        resources["gpu"] = 0
        resources.update((overrides or {}).get(rule, {}))
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 1,
            "slurm-keep-successful-logs": True,
            "slurm-no-account": True,
        }
    )
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def slurm_params() -> dict:
    """The tiny pipeline (tests/test_workflow.py) with one tokenizer and an AR model big enough
    (2 layers, d = 64, 400 steps, a checkpoint every 50) to be cancelled mid-run."""
    raw = tiny_pipeline_params()
    raw["tokenizer"].update(alphas=[1.0], control_no_perceptual=False, control_no_entropy=False)
    tr = raw["transformer"]
    tr["sizes"]["base"].update(layers=2, heads=2, dim=64, mlp_dim=128)
    tr.update(eval_every=100, checkpoint_every=50)
    tr["ar"].update(iterations=400, decay_start=200)
    return raw


class SlurmJob(NamedTuple):
    id: str
    comment: str  # the plugin's rule_<rule>[_wildcards_<values>]
    state: str
    workdir: Path


def squeue_jobs() -> list[SlurmJob]:
    """Every job slurmctld still knows (finished ones included)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%Z"], capture_output=True, text=True, check=True)
    jobs = [line.split("|", 3) for line in out.stdout.splitlines() if line.strip()]
    return [SlurmJob(job_id, comment, state, Path(workdir)) for job_id, comment, state, workdir in jobs]


def progress_step(log: Path) -> int:
    """The last ``[progress] ...: step/total`` step in a job's log (0 before the first line)."""
    if not log.is_file():
        return 0
    steps = re.findall(r"^\[progress\] .*?: (\d+)/\d+ ", log.read_text(), re.M)
    return int(steps[-1]) if steps else 0


def cancel_mid_run(run_dir: Path, proc: subprocess.Popen, variant: str, after_step: int) -> str:
    """scancel the train_ar job of ``variant`` once its log shows a step past ``after_step``."""
    log = run_dir / "logs" / "train_ar" / "base" / variant / "seed0.log"
    deadline = time.monotonic() + 600
    while progress_step(log) <= after_step:
        assert proc.poll() is None, "the workflow ended before train_ar could be cancelled"
        assert time.monotonic() < deadline, "train_ar never got past its first checkpoint"
        time.sleep(0.05)
    running = [
        job.id
        for job in squeue_jobs()
        if job.comment.startswith("rule_train_ar_wildcards_")
        and f"_{variant}_" in job.comment
        and job.state == "RUNNING"
    ]
    assert len(running) == 1, squeue_jobs()
    subprocess.run(["scancel", running[0]], check=True)
    return running[0]


@contextlib.contextmanager
def background(command: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """``command`` running in ``cwd`` with its output in ``log`` (a file: a pipe nobody reads
    could fill and block it); killed if the test fails before it ends, its SLURM jobs cancelled."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                subprocess.run(["scancel", "--user", "root"], capture_output=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 1200) -> str:
    """Wait for ``proc`` to succeed; return its output."""
    proc.wait(timeout=timeout)
    output = log.read_text()
    assert proc.returncode == 0, output[-6000:]
    return output


def test_fig2_through_sbatch_equals_a_local_run_and_a_cancelled_job_resumes(
    cluster: dict[str, int],
    time_limit_run: tuple[subprocess.Popen, Path, concurrent.futures.Future[str]],
    tmp_path: Path,
) -> None:
    """The local reference run, the SLURM run and ``time_limit_run`` go side by side: the SLURM
    run mostly waits (job start-up, status checks), so the three take little more than the
    slowest alone."""
    params = yaml.safe_dump(slurm_params(), sort_keys=False)
    local, remote = tmp_path / "local", tmp_path / "slurm"
    for d in (local, remote):
        d.mkdir()
        (d / "params.yaml").write_text(params)
    target = "results/fig2_val_loss.pdf"
    dry = subprocess.run([*SNAKEMAKE, "-n", "--cores", "2", target], cwd=remote, capture_output=True, text=True)
    jobs = re.findall(r"^(?:local)?rule (\w+):", dry.stdout, re.M)
    planned = [rule for rule in jobs if rule not in localrules()]  # sent to SLURM
    assert "train_ar" in planned and set(jobs) - set(planned) == {"fig2_val_loss"}

    profile = cluster_profile(tmp_path / "profile", cluster["cpus"])
    command = [*SNAKEMAKE, "--workflow-profile", str(profile), "--jobs", "2", target]
    with background(command, remote, tmp_path / "slurm.log") as proc:
        with background([*SNAKEMAKE, "--cores", "1", target], local, tmp_path / "local.log") as reference:
            cancelled = cancel_mid_run(remote, proc, "alpha1.0", after_step=60)
            output = finish(proc, tmp_path / "slurm.log")
            finish(reference, tmp_path / "local.log")

    # every planned job went through sbatch: its SLURM log is where the plugin writes them
    slurm_logs = remote / ".snakemake" / "slurm_logs"
    submitted = sorted(p.relative_to(slurm_logs).parts[0] for p in slurm_logs.rglob("*.log"))
    assert sorted(set(submitted)) == sorted({f"rule_{r}" for r in planned})
    assert len(submitted) == len(planned) + 1  # the cancelled train_ar ran twice
    comments = [job.comment for job in squeue_jobs()]
    assert sum(c.startswith("rule_train_ar_wildcards_base_alpha1.0_") for c in comments) >= 2
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in output

    # the retry resumed from the last checkpoint and ended where an uninterrupted run ends
    weights = "models/transformer/ar/base/{}/seed0/model.safetensors"
    a, _ = load_weights(local / weights.format("alpha1.0"))
    b, sidecar = load_weights(remote / weights.format("alpha1.0"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert sidecar["training"]["resumed_from_step"] >= 50
    # the numbers of the figure are the local run's
    csv = "results/fig2_val_loss.csv"
    assert (remote / csv).read_text() == (local / csv).read_text()
    # SLURM's log of the cancelled attempt and the rule's own log are where docs/cluster.md says
    assert (slurm_logs / "rule_train_ar" / "base_alpha1.0_0" / f"{cancelled}.log").is_file()
    log = (remote / "logs" / "train_ar" / "base" / "alpha1.0" / "seed0.log").read_text()
    assert "[progress]" in log


def job_processes(job_id: str) -> dict[int, str]:
    """pid -> command line of every process slurmd tracks for a job (``scontrol listpids``)."""
    out = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True)
    processes = {}
    for line in out.stdout.splitlines()[1:]:
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(line.split()[0])
            processes[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return processes


def running_job_of(workdir: Path, rule: str) -> str | None:
    """The RUNNING job of ``rule`` submitted from ``workdir`` (another workflow on the cluster may
    run the same rule at the same time); None while there is none or squeue does not answer."""
    try:
        jobs = squeue_jobs()
    except subprocess.CalledProcessError:
        return None
    for job in jobs:
        if (
            job.state == "RUNNING"
            and re.fullmatch(rf"rule_{rule}(_wildcards_.*)?", job.comment)
            and job.workdir.resolve() == workdir.resolve()
        ):
            return job.id
    return None


def process_state(pid: int) -> str:
    """The one-letter state of /proc/<pid>/stat (``T``: stopped); empty once it has exited."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def freeze_when_running(proc: subprocess.Popen, workdir: Path, rule: str, command: str) -> str:
    """SIGSTOP every process of ``rule``'s job (the one from ``workdir``) once ``seqgan <command>``
    runs in it: the job stays alive past its time limit without taking a core from the rest of the
    suite for that minute. Stops again until no process of the job is left running."""
    deadline = time.monotonic() + 600
    while True:
        assert proc.poll() is None, f"the workflow ended before {rule} ran"
        assert time.monotonic() < deadline, f"{rule} never ran"
        job = running_job_of(workdir, rule)
        processes = job_processes(job) if job else {}
        if any(f"-m seqgan {command}" in cmdline for cmdline in processes.values()):
            break
        time.sleep(0.5)
    stopped: set[int] = set()
    while new := set(job_processes(job)) - stopped:  # a process started meanwhile is stopped too
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
        time.sleep(0.2)
    assert all(process_state(pid) in ("T", "Z", "") for pid in stopped), {pid: process_state(pid) for pid in stopped}
    return job


@pytest.fixture(scope="module")
def time_limit_run(
    cluster: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen, Path, concurrent.futures.Future[str]]]:
    """A workflow whose train_semantic gets 1 minute (SLURM's smallest limit) and far more work,
    started in the background: it spends most of its time waiting for SLURM's limit and the
    plugin's status checks, so it runs beside the end-to-end test instead of after it. Once the
    training command runs, a thread stops the job's processes (SIGSTOP; the future gives its job
    id), so that minute costs no CPU."""
    workdir = tmp_path_factory.mktemp("time_limit")
    raw = slurm_params()
    raw["semantic"].update(iterations=100000, eval_every=50000, checkpoint_every=50000)
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    profile = cluster_profile(workdir / "profile", cluster["cpus"], {"train_semantic": {"runtime": 1}})
    command = [*SNAKEMAKE, "--workflow-profile", str(profile), "--retries", "0", "models/semantic/net.safetensors"]
    log = workdir / "snakemake.log"
    # the workflow is killed first on teardown, which ends the thread's wait
    with concurrent.futures.ThreadPoolExecutor(1) as pool, background(command, workdir, log) as proc:
        yield proc, log, pool.submit(freeze_when_running, proc, workdir, "train_semantic", "train-semantic")


def test_a_job_over_its_time_limit_is_reported_with_the_slurm_reason(
    time_limit_run: tuple[subprocess.Popen, Path, concurrent.futures.Future[str]],
) -> None:
    proc, log, frozen = time_limit_run
    job = frozen.result(timeout=600)
    proc.wait(timeout=600)
    output = log.read_text()
    assert proc.returncode != 0
    assert f"SLURM-job '{job}' failed, SLURM status is: 'TIMEOUT'" in output, output[-4000:]
