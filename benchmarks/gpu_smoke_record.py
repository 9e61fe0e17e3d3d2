"""The GPU smoke run's check stage, its records and its summary (``benchmarks/gpu_smoke.sh``).

    python benchmarks/gpu_smoke_record.py check [--out DIR]
    python benchmarks/gpu_smoke_record.py summary --out DIR

``check`` says what runs where before anything is timed: Python, torch with its CUDA and cuDNN, the
GPUs (torch's view and ``nvidia-smi -L``'s names), and every package the project imports with its
version and the folder it came from, so a log shows whether a package is the image's own or one
of the carried wheels (``benchmarks/gpu_wheels.py``). It exits 1 naming what is missing, or when
``seqgan`` is not imported from this checkout. It imports nothing of the project before it has
looked, so it runs where the other stages cannot start.

The stages (``benchmarks/gpu_smoke.py``) append their measurements to ``DIR/records.jsonl`` through
:func:`record`, the shell script appends each stage's exit status and seconds, and ``summary``
folds them into ``DIR/summary.json``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from gpu_wheels import project_needs
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = 3  # exit status of a stage that could not run here (gpu_smoke.sh says "skipped")

# Every runtime dependency of pyproject.toml, by the module it is imported as (a test keeps the two
# in step): the check imports each one, and its version must satisfy pyproject's specifier.
IMPORTED_AS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "lpips": "lpips",
    "clean-fid": "cleanfid",
    "scipy": "scipy",
    "numpy": "numpy",
    "pillow": "PIL",
    "pyyaml": "yaml",
    "jsonschema": "jsonschema",
    "safetensors": "safetensors",
    "snakemake": "snakemake",
    "dvc": "dvc",
    "dvclive": "dvclive",
    "pandas": "pandas",
    "tabulate": "tabulate",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}
RECORDS: Path | None = None  # --out DIR: DIR/records.jsonl


def write_records_to(out: Path) -> None:
    """Send :func:`record` to ``out/records.jsonl`` (the folder is made)."""
    global RECORDS
    out.mkdir(parents=True, exist_ok=True)
    RECORDS = out / "records.jsonl"


def log(line: str) -> None:
    print(line, flush=True)


def record(stage: str, **fields: Any) -> None:
    """Append one measurement to the output folder's records (nothing without ``--out``)."""
    if RECORDS is not None:
        with RECORDS.open("a") as file:
            file.write(json.dumps({"stage": stage, **fields}) + "\n")


# --------------------------------------------------------------------------------------------
# The check stage: what runs where
# --------------------------------------------------------------------------------------------


def gpu_description() -> list[dict[str, Any]]:
    """Every CUDA device torch sees: name, memory, compute capability, bf16."""
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}",
                "bf16": torch.cuda.is_bf16_supported(),
            }
        )
    return devices


def nvidia_smi_names() -> list[str]:
    """``nvidia-smi -L``'s lines (the GPU as the driver names it), empty where there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.startswith("GPU ")]


def project_requirements() -> list[Requirement]:
    """pyproject.toml's runtime dependencies (what gpu_wheels.py fetches) whose markers hold here."""
    requirements = [Requirement(spec) for spec in project_needs()]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


def unmet_versions(requirements: list[Requirement], versions: dict[str, str]) -> list[str]:
    """The installed versions (``{name: version}``; local labels such as ``+cu130`` ignored) that
    pyproject.toml's specifiers reject: an image's own package may be newer than the project allows."""
    unmet = []
    for requirement in requirements:
        version = versions.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier:
            continue
        if not requirement.specifier.contains(version.split("+")[0], prereleases=True):
            unmet.append(f"{requirement.name} {version} (pyproject.toml: {requirement})")
    return unmet


def distribution_version(dist: str) -> str:
    """The installed distribution's version ("?" where its metadata is absent)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def stage_check() -> None:
    """Python, torch, GPU and every package the project imports, with where each comes from."""
    cuda = torch.version.cuda
    log(
        f"== check: Python {platform.python_version()} ({sys.executable}), torch {torch.__version__} "
        f"(CUDA {cuda}, cuDNN {torch.backends.cudnn.version() if cuda else None})"
    )
    gpus = gpu_description()
    for gpu in gpus:
        described = f"{gpu['memory_gib']} GiB, capability {gpu['capability']}, bf16 {gpu['bf16']}"
        log(f"cuda:{gpu['index']} {gpu['name']}, {described}")
    if not gpus:
        log("no CUDA device")
    requirements = project_requirements()
    packages: dict[str, dict[str, str]] = {}
    missing = []
    for requirement in requirements:
        dist = canonicalize_name(requirement.name)
        try:
            imported = importlib.import_module(IMPORTED_AS[dist])
        except ImportError as error:
            missing.append(dist)
            log(f"  {dist:<12} MISSING ({error})")
            continue
        version = distribution_version(dist)
        if version == "?":
            version = str(getattr(imported, "__version__", "?"))
        folder = str(Path(imported.__file__ or list(imported.__path__)[0]).resolve().parents[1])
        packages[dist] = {"version": version, "from": folder}
        log(f"  {dist:<12} {version:<14} {folder}")
    unmet = unmet_versions(requirements, {dist: package["version"] for dist, package in packages.items()})
    for line in unmet:
        log(f"  NOT ACCEPTED: {line}")
    try:
        import seqgan
    except ImportError:
        seqgan_folder = None
        log(f"  seqgan       MISSING: put {ROOT} on PYTHONPATH (gpu_smoke.sh does) or pip install it")
    else:
        seqgan_folder = Path(seqgan.__file__).resolve().parent
        where = "this checkout" if seqgan_folder == ROOT / "seqgan" else "NOT this checkout"
        log(f"  seqgan       {where}: {seqgan_folder}")
    cpu = None
    if seqgan_folder is not None:
        from seqgan.train.runtime import cpu_description  # numpy and torch only

        cpu = cpu_description()
    record(
        "check",
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=cuda,
        cudnn=torch.backends.cudnn.version() if cuda else None,
        gpus=gpus,
        nvidia_smi=nvidia_smi_names(),
        cpu=cpu,
        packages=packages,
        missing=missing,
        unmet=unmet,
    )
    if unmet:
        raise SystemExit(f"versions the project does not accept: {'; '.join(unmet)}")
    if missing:
        raise SystemExit(
            f"missing: {', '.join(missing)}. On a machine with network run `.venv/bin/python benchmarks/gpu_wheels.py` "
            "(wheels into .whl), bring .whl along, then `bash benchmarks/gpu_smoke.sh --wheels .whl`"
        )
    if seqgan_folder != ROOT / "seqgan":
        raise SystemExit(f"seqgan is imported from {seqgan_folder}, not from {ROOT}: run gpu_smoke.sh of this checkout")


def summarise(out: Path) -> dict[str, Any]:
    """``out/records.jsonl`` (the stages' measurements and the shell script's stage statuses) as one
    document: the run (mode, commit, date), the environment of the check stage, each stage's exit
    status, seconds and measurements, the stages that could not run here (``skipped``) and ``ok``
    (every stage exited 0 or was skipped, as the shell script's own exit status says)."""
    lines = (out / "records.jsonl").read_text().splitlines() if (out / "records.jsonl").is_file() else []
    records = [json.loads(line) for line in lines if line.strip()]
    summary: dict[str, Any] = {"run": {}, "environment": None, "stages": {}}
    for item in records:
        stage = item.pop("stage")
        if item.pop("kind", None) == "status":
            summary["stages"].setdefault(stage, {"measured": []}).update(item)
        elif stage == "run":
            summary["run"].update(item)
        elif stage == "check":
            summary["environment"] = item
        else:
            summary["stages"].setdefault(stage, {"measured": []})["measured"].append(item)
    statuses = {name: stage.get("exit") for name, stage in summary["stages"].items()}
    summary["skipped"] = [name for name, status in statuses.items() if status == SKIPPED]
    summary["ok"] = bool(statuses) and all(status in (0, SKIPPED) for status in statuses.values())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "summary"])
    parser.add_argument("--out", type=Path, default=None, help="output folder: records.jsonl, summary.json")
    args = parser.parse_args()
    if args.command == "summary":
        if args.out is None:
            parser.error("summary needs --out DIR")
        (args.out / "summary.json").write_text(json.dumps(summarise(args.out), indent=2) + "\n")
        return
    if args.out is not None:
        write_records_to(args.out)
    stage_check()


if __name__ == "__main__":
    main()
