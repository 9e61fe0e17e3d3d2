"""Wheels for an offline GPU node: what the project needs at run time that the node's image lacks.

    .venv/bin/python benchmarks/gpu_wheels.py [--dest .whl] [--image SPEC ...] [--max-glibc 2.28]

Many GPU nodes run a fixed image with no network and no package registry: Python with torch and a
few scientific packages, but no Snakemake, DVC(Live), LPIPS or clean-fid. This script runs on a
machine WITH network, in the project's virtualenv (it needs pip and packaging), and fills
``--dest`` with exactly the wheels the node needs, for CPython 3.12 on manylinux x86-64.
``benchmarks/gpu_smoke.sh --wheels DEST`` then installs them there with
``pip install --no-index --no-deps --target`` beside the image's own torch.

What is fetched is derived, not listed by hand:

1. ``needs``: the project's runtime dependencies (``[project].dependencies`` of pyproject.toml).
2. ``image``: what the node has (``--image``; the default is the image of the project's GPU
   machine: torch 2.11 with torchvision, numpy, pandas, matplotlib, safetensors, PyYAML,
   scikit-image, tqdm and pytest), with everything those packages need (they are installed there,
   so their own dependencies are too).
3. pip resolves ``image + needs`` together for the target (so every version it picks works with
   the image's pins) and ``image`` alone; the wheels are the difference, one version per package.

A dependency published only as a source archive (Snakemake's ``connection_pool``, Hydra's
``antlr4-python3-runtime``) cannot be resolved for another platform, so it is built here into a
wheel first, which must come out pure Python (``py3-none-any``). The wheels and the files of the
repository that travel with them (``git ls-files --cached --others --exclude-standard``) must fit
``--limit-mib`` (64 MiB, what one GPU job of this workplace may carry); the script says what
each takes and exits 1 when they do not fit. ``DEST/MANIFEST.txt`` records what was assumed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# The project's GPU machine (the device tool's image 'cuda', as issue 21 describes it): the oldest
# torch the code must accept there is this one.
DEFAULT_IMAGE = (
    "torch==2.11.0",
    "torchvision==0.26.0",
    "numpy",
    "pandas",
    "matplotlib",
    "safetensors",
    "pyyaml",
    "scikit-image",
    "tqdm",
    "pytest",
)
PURE_TAGS = ("py3-none-any", "py2.py3-none-any")


@dataclass(frozen=True)
class Pinned:
    """One package of a resolution: its name, version and where pip would fetch it."""

    name: str
    version: str
    url: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def is_wheel(self) -> bool:
        return self.url.endswith(".whl")

    @property
    def wheel_prefix(self) -> str:
        """How the names of its wheel files begin (``connection_pool-0.0.3-``)."""
        return f"{canonicalize_name(self.name).replace('-', '_')}-{self.version}-"


def project_needs(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The runtime dependencies the package declares (what ``pip install .`` would pull in)."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def target_flags(python_version: str, max_glibc: str) -> list[str]:
    """pip flags that resolve for CPython ``python_version`` on manylinux x86-64 up to ``max_glibc``.

    pip matches platform tags exactly, so every manylinux tag the target accepts is listed: the
    legacy aliases and ``manylinux_2_N`` for N from 5 to the target's glibc.
    """
    major, minor = (int(part) for part in max_glibc.split("."))
    if major != 2 or minor < 17:
        raise SystemExit(f"--max-glibc {max_glibc}: expected 2.N with N >= 17 (torch itself needs 2.28)")
    tags = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
    tags += [f"manylinux_2_{n}_x86_64" for n in range(5, minor + 1)]
    abi = "cp" + python_version.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp", "--abi", abi]
    flags += ["--abi", "abi3", "--abi", "none"]
    for tag in tags:
        flags += ["--platform", tag]
    return flags


def pip(args: Sequence[str], what: str) -> None:
    """Run pip with this interpreter; on failure show its message and stop with what was attempted."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        noise = "WARNING: Location"  # this machine's pip config names local indexes that may be absent
        err = "\n".join(line for line in result.stderr.splitlines() if not line.startswith(noise))
        raise SystemExit(f"pip failed while {what}:\n{err[-4000:]}")


def resolve(specs: Iterable[str], flags: Sequence[str], scratch: Path, label: str) -> dict[str, Pinned]:
    """What pip would install for ``specs`` (a dry run with a JSON report: no wheel is downloaded)."""
    report = scratch / f"{label}.json"
    target = scratch / f"{label}-target"
    args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
    if flags:
        args += ["--target", str(target), *flags]
    pip([*args, *specs], f"resolving {label}")
    return parse_report(json.loads(report.read_text()))


def parse_report(report: dict) -> dict[str, Pinned]:
    """``{canonical name: Pinned}`` from a ``pip install --report`` document (format version 1)."""
    pinned = {}
    for item in report["install"]:
        meta = item["metadata"]
        pinned[canonicalize_name(meta["name"])] = Pinned(meta["name"], meta["version"], item["download_info"]["url"])
    return pinned


def missing_from_image(resolved: dict[str, Pinned], image: dict[str, Pinned]) -> list[Pinned]:
    """The packages of the joint resolution that the image does not have, by name, sorted."""
    return sorted((p for key, p in resolved.items() if key not in image), key=lambda p: canonicalize_name(p.name))


def build_pure_wheels(sources: Sequence[Pinned], out: Path) -> None:
    """Build wheels of source-only packages here; each must be pure Python to run on the target."""
    if not sources:
        return
    pip(["wheel", "--no-deps", "--quiet", "-w", str(out), *(p.spec for p in sources)], "building source packages")
    for package in sources:
        built = [w for w in out.glob("*.whl") if w.name.lower().startswith(package.wheel_prefix)]
        if not built:
            raise SystemExit(f"building {package.spec} gave no wheel in {out}")
        if not built[0].name.endswith(tuple(f"{tag}.whl" for tag in PURE_TAGS)):
            raise SystemExit(
                f"{package.spec} is published only as a source archive and builds to {built[0].name}, "
                "which is not pure Python: build it on a machine like the GPU node (CPython 3.12, x86-64)"
            )


def travelling_bytes(repo: Path = ROOT) -> int:
    """Bytes of the repository files that travel to a GPU job: tracked and untracked-not-ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    paths = (repo / name for name in listed.decode().split("\0") if name)
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl", help="wheel folder (emptied first)")
    parser.add_argument("--image", nargs="+", default=list(DEFAULT_IMAGE), help="what the node's image has")
    parser.add_argument("--python-version", default="3.12", help="the node's CPython (default 3.12)")
    parser.add_argument(
        "--max-glibc", default="2.28", help="the node's glibc; 2.28 is what torch's own wheels need (default)"
    )
    parser.add_argument("--limit-mib", type=float, default=64.0, help="wheels + repository may carry (MiB)")
    parser.add_argument("--print-image", action="store_true", help="print the default image's packages and stop")
    args = parser.parse_args()
    if args.print_image:
        print("\n".join(DEFAULT_IMAGE))
        return

    needs = project_needs()
    flags = target_flags(args.python_version, args.max_glibc)
    with tempfile.TemporaryDirectory(prefix="gpu_wheels_") as tmp:
        scratch = Path(tmp)
        built = scratch / "built"
        built.mkdir()
        print(f"resolving {len(needs)} project dependencies beside the image ({' '.join(args.image)})", flush=True)
        # source-only packages are found by a resolution for this interpreter, built, then offered
        # to the target resolution as local wheels
        native = resolve([*args.image, *needs], [], scratch, "native")
        build_pure_wheels([p for p in native.values() if not p.is_wheel], built)
        local = ["--find-links", str(built)]
        joint = resolve([*args.image, *needs], [*flags, *local], scratch, "joint")
        image = resolve(args.image, flags, scratch, "image")
        wanted = missing_from_image(joint, image)

        if args.dest.exists():
            for old in args.dest.glob("*.whl"):
                old.unlink()  # one version of each package: two stop the whole install
        args.dest.mkdir(parents=True, exist_ok=True)
        print(f"downloading {len(wanted)} wheels into {args.dest}", flush=True)
        pip(
            ["download", "--no-deps", "--quiet", "-d", str(args.dest), *flags, *local, *(p.spec for p in wanted)],
            "downloading the wheels",
        )
        for wheel in built.glob("*.whl"):
            if any(wheel.name.lower().startswith(p.wheel_prefix) for p in wanted):
                shutil.copy2(wheel, args.dest / wheel.name)

    wheels = sorted(args.dest.glob("*.whl"))
    if len(wheels) != len(wanted):
        raise SystemExit(f"expected {len(wanted)} wheels in {args.dest}, found {len(wheels)}")
    wheel_bytes = sum(w.stat().st_size for w in wheels)
    repo_bytes = travelling_bytes()
    total_mib = (wheel_bytes + repo_bytes) / 2**20
    (args.dest / "MANIFEST.txt").write_text(
        f"# benchmarks/gpu_wheels.py: CPython {args.python_version}, manylinux x86-64 (glibc <= {args.max_glibc})\n"
        f"# image assumed: {' '.join(args.image)}\n# needs: {' '.join(needs)}\n"
        + "".join(f"{p.spec}\n" for p in wanted)
    )
    largest = sorted(wheels, key=lambda w: w.stat().st_size, reverse=True)[:5]
    print("largest: " + ", ".join(f"{w.name.split('-')[0]} {w.stat().st_size / 2**20:.1f}" for w in largest) + " MiB")
    print(
        f"{len(wheels)} wheels {wheel_bytes / 2**20:.1f} MiB + repository {repo_bytes / 2**20:.1f} MiB "
        f"= {total_mib:.1f} MiB of {args.limit_mib:g} MiB"
    )
    if total_mib > args.limit_mib:
        raise SystemExit(f"over the {args.limit_mib:g} MiB a GPU job may carry")


if __name__ == "__main__":
    main()
