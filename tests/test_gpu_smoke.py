"""benchmarks/gpu_smoke.sh: every stage in its CPU-sized dry mode, its output folder, and the
offline-node path (carried wheels, the check stage).

The full mode needs a GPU and runs by hand; this checks the script itself on every CI run -- the
timed steps of each paper code path (tokenizer phase 1 at alpha 0 and 1 with the GAN, phase 2, AR
and NAR large with the compile switch), the kill-and-resume of a real training process (bit-identical
weights on a CPU), a reduced paper configuration of JPEG folders through Snakemake with the GPU
profile up to fig2, and the log and summary.json they leave. benchmarks/gpu_wheels.py's resolution
needs the network; its pure parts are checked here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "benchmarks" / "gpu_smoke.sh"


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


wheels = load_benchmark("gpu_wheels")  # first: gpu_smoke_record imports it
record = load_benchmark("gpu_smoke_record")


def run_smoke(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SMOKE), *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow
def test_gpu_smoke_dry_mode_runs_every_stage(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    result = run_smoke("--dry", "--out", str(out_dir))
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    for stage in ("check", "steps", "resume", "workflow"):
        assert re.search(rf"^# stage {stage}: exit 0 after \d+ s", out, re.M), stage
    timed = re.findall(
        r"^(tokenizer phase \d alpha [\d.]+ GAN on|transformer n?ar large compile=\w+) .*?"
        r"([\d.]+) s/step .* peak ([\d.]+) GiB$",
        out,
        re.M,
    )
    names = [name for name, _, _ in timed]
    assert names == [
        "tokenizer phase 1 alpha 0.0 GAN on",
        "tokenizer phase 1 alpha 1.0 GAN on",
        "tokenizer phase 2 alpha 0.0 GAN on",
        "transformer ar large compile=False",
        "transformer ar large compile=True",
        "transformer nar large compile=False",
        "transformer nar large compile=True",
    ]
    assert all(float(seconds) > 0 and float(peak) > 0 for _, seconds, peak in timed)
    assert re.search(r"^resumed_from_step (\d+); weights vs the uninterrupted run: bit-identical$", out, re.M)
    assert int(re.search(r"^resumed_from_step (\d+)", out, re.M).group(1)) > 0
    assert re.search(r"^fig2 written in \d+ s \(\d+ of \d+ steps \(100%\) done\)$", out, re.M)
    # both objectives of the paper configuration were trained, each on the CPU in fp32
    trained = re.findall(r"^  models/transformer/(n?ar)/base/alpha[\d.]+/seed0/model.json: cpu, fp32", out, re.M)
    assert sorted(set(trained)) == ["ar", "nar"]

    # the output folder: the log is what was printed, and the summary holds the same numbers
    assert sorted(p.name for p in out_dir.iterdir()) == ["gpu_smoke.log", "summary.json"]
    assert (out_dir / "gpu_smoke.log").read_text() == out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["run"]["mode"] == "dry" and re.fullmatch(r"[0-9a-f]{40}", summary["run"]["commit"])
    stages = summary["stages"]
    assert list(stages) == ["check", "steps", "resume", "workflow"]
    assert all(stage["exit"] == 0 and 0 <= stage["seconds"] <= stage["limit_s"] for stage in stages.values())
    cases = stages["steps"]["measured"]
    assert [case["case"] for case in cases] == names
    for case, (_, seconds, peak) in zip(cases, timed, strict=True):
        assert f"{case['s_per_step']:.3f}" == seconds and f"{case['peak_gib']:.2f}" == f"{float(peak):.2f}"
        assert case["precision"] == "fp32" and case["tf32"] is False  # CPU: no autocast, no TF32
    transformers = [case for case in cases if case["case"].startswith("transformer")]
    assert all(case["compiled"] is False and case["mfu"] is None for case in transformers)  # CPU: no peak
    assert all(case["tokens_per_s"] > 0 and case["model_tflop_per_step"] > 0 for case in transformers)
    (resume,) = stages["resume"]["measured"]
    assert resume["bit_identical"] is True and 0 < resume["resumed_from_step"] < resume["iterations"]
    (workflow,) = stages["workflow"]["measured"]
    assert {Path(name).parts[2] for name in workflow["trained"] if name.startswith("models/transformer")} == {
        "ar",
        "nar",
    }
    environment = summary["environment"]
    assert environment["missing"] == [] and environment["unmet"] == []
    assert set(environment["packages"]) == {r.name for r in record.project_requirements()}


def write_wheel(folder: Path, name: str, version: str, init: str) -> Path:
    """A minimal pure-Python wheel of one module (what pip needs: the module, METADATA, WHEEL, RECORD)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": init,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


@pytest.mark.slow
def test_carried_wheels_come_first_and_the_check_names_what_is_missing(tmp_path: Path) -> None:
    """``--wheels``: the wheels are installed into a folder that comes before the environment's own
    packages, and the check says where each package came from. A package whose import fails (here a
    carried lpips that raises) fails the check by name, with the command that fetches wheels."""
    carried = tmp_path / "wheels"
    carried.mkdir()
    write_wheel(carried, "tabulate", "99.0", "")
    write_wheel(carried, "lpips", "0.0.1", "raise ImportError('no lpips here')\n")
    out_dir = tmp_path / "out"
    result = run_smoke("--dry", "--wheels", str(carried), "--stages", "check", "--out", str(out_dir))
    out = result.stdout
    assert result.returncode == 1, out[-4000:] + result.stderr[-4000:]
    assert "# installed 2 wheels from" in out
    assert re.search(r"^  lpips +MISSING \(no lpips here\)$", out, re.M)
    assert "missing: lpips. On a machine with network run `.venv/bin/python benchmarks/gpu_wheels.py`" in out
    assert re.search(r"^# stage check: exit 1 after \d+ s", out, re.M)
    assert "== steps" not in out  # --stages check: nothing else ran
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["ok"] is False and list(summary["stages"]) == ["check"]
    environment = summary["environment"]
    assert environment["missing"] == ["lpips"]
    tabulate = environment["packages"]["tabulate"]
    assert tabulate["version"] == "99.0" and Path(tabulate["from"]).name == "site"
    assert Path(environment["packages"]["torch"]["from"]) != Path(tabulate["from"])  # the environment's own


def test_smoke_refuses_a_wheel_folder_without_wheels_and_unknown_stages(tmp_path: Path) -> None:
    empty = run_smoke("--wheels", str(tmp_path))
    assert empty.returncode == 2 and "no wheels in" in empty.stderr and "gpu_wheels.py" in empty.stderr
    unknown = run_smoke("--stages", "steps,train")
    assert unknown.returncode == 2 and "unknown stage 'train'" in unknown.stderr


def test_every_project_dependency_has_its_import_name() -> None:
    """The check imports each pyproject dependency by its module name: none may be left out."""
    assert {r.name for r in record.project_requirements()} == set(record.IMPORTED_AS)


def test_versions_the_project_does_not_accept_are_named() -> None:
    requirements = [Requirement("scipy<1.18"), Requirement("torch>=2.11"), Requirement("numpy")]
    versions = {"scipy": "1.18.1", "torch": "2.11.0+cu130", "numpy": "2.5.5"}
    assert record.unmet_versions(requirements, versions) == ["scipy 1.18.1 (pyproject.toml: scipy<1.18)"]
    assert record.unmet_versions(requirements, {**versions, "scipy": "1.17.1"}) == []
    assert record.unmet_versions(requirements, {**versions, "scipy": "1.17.1", "torch": "2.10.1+cu128"}) == [
        "torch 2.10.1+cu128 (pyproject.toml: torch>=2.11)"
    ]


def test_summary_folds_records_by_stage(tmp_path: Path) -> None:
    lines = [
        {"stage": "run", "mode": "full", "commit": "c" * 40},
        {"stage": "check", "python": "3.12.3", "missing": []},
        {"stage": "check", "kind": "status", "exit": 0, "seconds": 4, "limit_s": 30},
        {"stage": "steps", "case": "a", "s_per_step": 0.5},
        {"stage": "steps", "case": "b", "out_of_memory": True},
        {"stage": "steps", "kind": "status", "exit": 124, "seconds": 160, "limit_s": 150},
        {"stage": "workflow", "kind": "status", "exit": 3, "seconds": 1, "limit_s": 120},
    ]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = record.summarise(tmp_path)
    assert summary["run"] == {"mode": "full", "commit": "c" * 40}
    assert summary["environment"] == {"python": "3.12.3", "missing": []}
    assert summary["stages"]["check"] == {"measured": [], "exit": 0, "seconds": 4, "limit_s": 30}
    steps = summary["stages"]["steps"]
    assert [case["case"] for case in steps["measured"]] == ["a", "b"] and steps["exit"] == 124
    assert summary["skipped"] == ["workflow"]  # exit 3: could not run here (no Snakemake), no failure
    assert summary["ok"] is False  # the stage over its time limit
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:3] + lines[6:]))
    assert record.summarise(tmp_path)["ok"] is True
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:4]))
    assert record.summarise(tmp_path)["ok"] is False  # measurements of a stage that never reported its end


# --------------------------------------------------------------------------------------------
# benchmarks/gpu_wheels.py: the parts that need no network
# --------------------------------------------------------------------------------------------


def report(*packages: tuple[str, str, str]) -> dict:
    """A ``pip install --report`` document with these (name, version, file name) packages."""
    return {
        "version": "1",
        "install": [
            {"metadata": {"name": name, "version": version}, "download_info": {"url": f"https://files/{file}"}}
            for name, version, file in packages
        ],
    }


def test_wheels_are_what_the_joint_resolution_has_beyond_the_image() -> None:
    joint = wheels.parse_report(
        report(
            ("torch", "2.11.0", "torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl"),
            ("Snakemake", "9.27.1", "snakemake-9.27.1-py3-none-any.whl"),
            ("connection_pool", "0.0.3", "connection_pool-0.0.3.tar.gz"),
            ("PyYAML", "6.0.4", "pyyaml-6.0.4-cp312-cp312-manylinux_2_17_x86_64.whl"),
        )
    )
    image = wheels.parse_report(
        report(
            ("torch", "2.11.0", "torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl"),
            ("pyyaml", "6.0.3", "pyyaml-6.0.3-cp312-cp312-manylinux_2_17_x86_64.whl"),
        )
    )
    wanted = wheels.missing_from_image(joint, image)
    # names compare as PEP 503 names (PyYAML is pyyaml), versions do not matter
    assert [p.spec for p in wanted] == ["connection_pool==0.0.3", "Snakemake==9.27.1"]
    assert [p.is_wheel for p in wanted] == [False, True]


def test_target_flags_accept_every_manylinux_tag_up_to_the_glibc() -> None:
    flags = wheels.target_flags("3.12", "2.28")
    platforms = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--platform"]
    assert {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"} <= set(platforms)
    assert "manylinux_2_29_x86_64" not in platforms
    abis = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--abi"]
    assert abis == ["cp312", "abi3", "none"] and "--only-binary=:all:" in flags
    with pytest.raises(SystemExit, match="2.N"):
        wheels.target_flags("3.12", "3.1")
