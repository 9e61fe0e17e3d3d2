"""`seqgan new-config`: a configuration for a folder of the user's own images, with every choice said.

Training on one's own images is what users of tokenizer repositories ask for most, and here it took
four hand-edited params keys found by reading the code. This command looks at the folder (layout,
images per class, image sizes), takes a recipe measured for the machine at hand (the embedded
default's on a CPU, a paper configuration's on a GPU), changes only what the data decides, writes
``configs/NAME.yaml`` with a comment on each changed key, validates it, runs the preflight and says
how long the main job should take here (scaled from the reference run's measured job times).

Everything not commented in the written file is the recipe's value, unchanged.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Literal

import yaml

from seqgan.config import ParamsError, lookup, validate_params

__all__ = ["FolderScan", "main_job_estimate", "new_config", "scan_folder"]

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPOSITORY / "results" / "reference"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
SIZE_SAMPLE = 200  # image headers read for the size summary (evenly spread over the sorted listing)
# Rules whose cost grows with the number of images of a split (the others train for a fixed number
# of steps): by which split.
PER_IMAGE_RULES = {"prepare_data": "both", "encode_tokens": "both", "fid_reference": "both", "eval_tokenizer": "val"}
REPORT_ONLY_RULES = {"fig2_val_loss", "model_sizes", "hparam_audit", "claims", "paper_table", "sample_grid"}

Machine = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class FolderScan:
    """What a folder of images holds, as the data preparation will list it."""

    folder: Path
    layout: Literal["classes", "flat"]
    per_class: dict[str, int]  # class name -> images ("all" for a flat folder)
    short_sides: list[int]  # shorter side in pixels of the sampled images

    @property
    def images(self) -> int:
        return sum(self.per_class.values())

    @property
    def median_short_side(self) -> int:
        return int(median(self.short_sides)) if self.short_sides else 0

    def summary(self) -> str:
        if self.layout == "classes":
            counts = ", ".join(f"{name} {count:,}" for name, count in list(self.per_class.items())[:8])
            more = f", ... ({len(self.per_class)} classes)" if len(self.per_class) > 8 else ""
            kind = f"{len(self.per_class)} class folders ({counts}{more})"
        else:
            kind = "a flat folder (no class sub-folders)"
        sizes = f"shorter side median {self.median_short_side} px over {len(self.short_sides)} sampled images"
        return f"{self.folder}: {self.images:,} images in {kind}; {sizes}"


def scan_folder(folder: Path) -> FolderScan:
    """Layout, images per class and image sizes of ``folder``, listed by the preparation code itself
    (the same extensions and rules): class folders when any sub-folder holds images and no image
    lies directly in the folder, flat otherwise."""
    from PIL import Image

    from seqgan.data.prepare import _list_folder

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SystemExit(f"error: --images {folder}: no such folder")
    classes = _list_folder(folder, "classes", None)
    layout: Literal["classes", "flat"] = (
        "classes" if classes.files and not classes.ignored["outside_class_folder"] else "flat"
    )
    listing = classes if layout == "classes" else _list_folder(folder, "flat", None)
    if not listing.files:
        raise SystemExit(f"error: --images {folder}: no image files found (jpg, png, ... at any depth)")
    counts = Counter(label for _, label in listing.files)
    per_class = {name: counts[index] for index, name in enumerate(listing.class_names)}
    step = max(1, len(listing.files) // SIZE_SAMPLE)
    sides = []
    for rel, _ in listing.files[::step][:SIZE_SAMPLE]:
        try:
            with Image.open(folder / rel) as image:  # reads the header, not the pixels
                sides.append(min(image.size))
        except OSError:
            continue  # unreadable: the preparation reports it in its skip list
    return FolderScan(folder, layout, per_class, sides)


def detect_machine() -> Machine:
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def _recipe(machine: Machine, layout: str) -> tuple[str, dict[str, Any]]:
    """(name, raw params) of the recipe: the embedded default on a CPU; on a GPU the paper
    configuration of the same layout (ImageNet for class folders, FFHQ for a flat folder)."""
    name = "embedded" if machine == "cpu" else ("imagenet" if layout == "classes" else "ffhq")
    return name, yaml.safe_load((REPOSITORY / "configs" / f"{name}.yaml").read_text())


def _powers_of_two_down(start: int, floor: int) -> list[int]:
    values = []
    value = start
    while value >= floor:
        values.append(value)
        value //= 2
    return values


def _choose_resolution(raw: dict[str, Any], scan: FolderScan, requested: int | None) -> tuple[int, str]:
    """The recipe's resolution, or a smaller power of two when most images are smaller (upscaling
    adds no detail); always one the models accept (validated)."""
    recipe = int(raw["data"]["resolution"])
    if requested:
        return requested, f"--resolution {requested}"
    short = scan.median_short_side
    candidates = [r for r in _powers_of_two_down(recipe, 8) if r <= short] or [recipe]
    for resolution in candidates:
        trial = copy.deepcopy(raw)
        trial["data"]["resolution"] = resolution
        try:
            validate_params(trial, "new-config")
        except ParamsError:
            continue
        if resolution == recipe:
            return resolution, f"the recipe's resolution; the images' shorter side is {short} px (median)"
        return resolution, f"the images' shorter side is {short} px (median): below the recipe's {recipe} px"
    return (
        recipe,
        f"the recipe's resolution (smaller ones do not fit its models); the images' shorter side is {short} px",
    )


def _relative(path: Path) -> str:
    """The path as the workflow (run in the repository root, the current directory) will read it."""
    path = path.expanduser().resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _set(raw: dict[str, Any], key: str, value: Any, why: str, choices: dict[str, str]) -> None:
    parent, _, last = key.rpartition(".")
    (lookup(raw, parent) if parent else raw)[last] = value
    choices[key] = why


def choose(
    scan: FolderScan, val: FolderScan | None, name: str, machine: Machine, resolution: int | None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(recipe name, raw params, {key: why}) for the folder."""
    recipe, raw = _recipe(machine, scan.layout)
    classes = len(scan.per_class)
    if machine == "cpu" and (scan.layout == "flat" or classes < 2):
        raise SystemExit(
            f"error: {scan.folder} has {'no class sub-folders' if scan.layout == 'flat' else 'one class'}. "
            "The CPU recipe (the embedded default's) trains its own semantic network and judge as "
            "classifiers of the class folders, so it needs at least two: sort the images into one "
            "sub-folder per class, or run new-config on a GPU node, whose paper recipe uses the "
            "pretrained VGG16 and Inception instead."
        )
    choices: dict[str, str] = {}
    _set(raw, "run.name", name, "names this configuration in figures, tables and claims.md", choices)
    if machine == "cpu":
        _set(raw, "run.device", "cpu", "the CPU on purpose ('auto' would make the preflight ask for a GPU)", choices)
    else:
        import torch

        gpus = torch.cuda.device_count()
        wanted = int(raw["run"]["gpus_per_job"])
        if 0 < gpus < wanted:
            _set(
                raw, "run.gpus_per_job", gpus, f"this node has {gpus} GPU(s); the global batch stays the same", choices
            )
    _set(raw, "data.name", name, f"the prepared splits go to data/{name}/", choices)
    _set(raw, "data.source", "folder", "a folder of image files", choices)
    folder = raw["data"]["folder"]
    _set(raw, "data.folder.train_dir", _relative(scan.folder), scan.summary(), choices)
    layout_why = "one sub-folder per class" if scan.layout == "classes" else "no class sub-folders"
    _set(raw, "data.folder.layout", scan.layout, layout_why, choices)
    if val is not None:
        _set(raw, "data.folder.val_dir", _relative(val.folder), val.summary(), choices)
        _set(raw, "data.folder.val_holdout_fraction", 0.0, "a separate validation folder is given", choices)
    else:
        synthetic = raw["data"]["synthetic"]
        share = round(synthetic["val_images"] / (synthetic["train_images"] + synthetic["val_images"]), 2)
        held = max(1, round(scan.images * share))
        _set(raw, "data.folder.val_dir", "", "no --val folder: part of the images is held out", choices)
        _set(
            raw,
            "data.folder.val_holdout_fraction",
            share,
            f"about {held:,} of {scan.images:,} images held out for validation (the embedded default's share)",
            choices,
        )
    chosen, why = _choose_resolution(raw, scan, resolution)  # validated: needs the data keys above
    _set(raw, "data.resolution", chosen, why, choices)
    if folder["workers"] > (os.cpu_count() or 1):
        _set(raw, "data.folder.workers", os.cpu_count() or 1, "this machine's CPU count", choices)
    if scan.layout == "classes":
        _set(raw, "transformer.num_classes", classes, f"{classes} class folders", choices)
        if raw["transformer"]["conditional"] and classes < 2:
            _set(raw, "transformer.conditional", False, "one class: nothing to condition on", choices)
    if machine == "cpu":
        largest = max(scan.per_class.values()) / scan.images
        gate = round(largest + (1 - largest) / 2, 2)
        for section in ("semantic", "judge"):
            _set(
                raw,
                f"{section}.min_val_accuracy",
                gate,
                f"halfway from chance ({largest:.2f}, the largest class's share) to 1; the recipe's "
                f"{raw[section]['min_val_accuracy']} was set for its synthetic shapes. Raise it when "
                "your classes allow",
                choices,
            )
    return recipe, raw, choices


def render(raw: dict[str, Any], choices: dict[str, str], header: list[str]) -> str:
    """YAML of ``raw`` with each chosen key's reason as an end-of-line comment."""
    lines = yaml.safe_dump(raw, sort_keys=False, width=1000).splitlines()
    out = [f"# {line}" if line else "#" for line in header]
    stack: list[tuple[int, str]] = []
    for line in lines:
        match = re.match(r"^( *)([A-Za-z0-9_]+):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            key = ".".join(part for _, part in stack)
            if key in choices:
                line = f"{line}  # new-config: {choices[key]}"
        out.append(line)
    return "\n".join(out) + "\n"


def _plan_counts(raw: dict[str, Any], target: str) -> Counter[str]:
    """Jobs per rule Snakemake plans for ``target`` under ``raw`` (a dry run in a scratch folder)."""
    with tempfile.TemporaryDirectory(prefix="seqgan-new-config-") as tmp:
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(REPOSITORY / "Snakefile"), target, "-n"],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
    text = result.stdout + result.stderr
    if result.returncode != 0 or "Job stats:" not in text:
        raise SystemExit(f"error: Snakemake could not plan {target} for this configuration:\n{text[-3000:]}")
    counts: Counter[str] = Counter()
    table = text.split("Job stats:", 1)[1].splitlines()
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def main_job_estimate(
    raw: dict[str, Any], counts: Counter[str], images: dict[str, int], reference_dir: Path = REFERENCE_DIR
) -> tuple[float, str] | None:
    """(seconds, how) for the main job here, scaled from the reference run: its main job's wall
    time times the ratio of this plan's job-seconds to the reference's for the same jobs (the median
    job time of each rule, scaled by pixels per image for every network job and by the images of
    the split for the per-image jobs). ``None`` where the reference does not apply (another recipe
    than the embedded default's, or no reference run)."""
    run_file, stages_file = reference_dir / "run.json", reference_dir / "stages.csv"
    if not run_file.is_file() or not stages_file.is_file():
        return None
    run = json.loads(run_file.read_text())
    reference = yaml.safe_load((REPOSITORY / "configs" / "embedded.yaml").read_text())
    comparable = dict(raw, run=reference["run"], data=reference["data"], semantic=reference["semantic"])
    comparable["judge"] = reference["judge"]
    comparable["transformer"] = dict(raw["transformer"], num_classes=reference["transformer"]["num_classes"])
    if comparable != reference:
        return None  # only the embedded recipe's models and steps were measured
    with stages_file.open() as handle:
        median_seconds = {row["rule"]: float(row["median_seconds"]) for row in csv.DictReader(handle)}
    synthetic = reference["data"]["synthetic"]
    ref_images = {"train": synthetic["train_images"], "val": synthetic["val_images"]}
    pixels = (raw["data"]["resolution"] / reference["data"]["resolution"]) ** 2
    ratio = {
        "both": (images["train"] + images["val"]) / (ref_images["train"] + ref_images["val"]),
        "val": images["val"] / ref_images["val"],
    }
    new = old = 0.0
    for rule, jobs in counts.items():
        base = jobs * median_seconds.get(rule, 0.0)
        scale = 1.0 if rule in REPORT_ONLY_RULES else pixels
        if rule in PER_IMAGE_RULES:
            scale *= ratio[PER_IMAGE_RULES[rule]]
        new += base * scale
        old += base
    if old == 0:
        return None
    machine = run["machine"]
    wall = float(run["main_job"]["wall_seconds"])
    how = (
        f"the reference run's main job took {wall / 60:.1f} min on {machine['cpu_model']} with "
        f"{machine['cores']} cores (results/reference/run.json); scaled by this plan's job times "
        f"({(raw['data']['resolution'] / reference['data']['resolution']) ** 2:.2f}x the pixels per image, "
        f"{images['train']:,} + {images['val']:,} images instead of {ref_images['train']:,} + "
        f"{ref_images['val']:,} for the per-image jobs). This machine: {os.cpu_count()} CPU(s)"
    )
    return wall * new / old, how


def new_config(
    images: Path,
    name: str,
    *,
    val: Path | None = None,
    machine: Literal["auto", "cpu", "gpu"] = "auto",
    resolution: int | None = None,
    force: bool = False,
    configs_dir: Path = Path("configs"),
) -> Path:
    """Write ``configs_dir/NAME.yaml`` for the folder, validate it, run its preflight and print the
    command that runs it with the expected time. Returns the written file."""
    if not NAME_PATTERN.fullmatch(name) or name in ("embedded",):
        raise SystemExit(f"error: --name {name!r}: use letters, digits, '_' or '-' (and not 'embedded')")
    if not configs_dir.is_dir():
        raise SystemExit(f"error: no {configs_dir}/ here: run new-config in the repository's root folder")
    out = configs_dir / f"{name}.yaml"
    if out.exists() and not force:
        raise SystemExit(f"error: {out} exists; choose another --name or pass --force to overwrite it")
    chosen_machine: Machine = detect_machine() if machine == "auto" else machine
    scan = scan_folder(images)
    val_scan = scan_folder(val) if val is not None else None
    if val_scan is not None and val_scan.layout != scan.layout:
        raise SystemExit(f"error: --images is laid out as {scan.layout}, --val as {val_scan.layout}: use the same")
    recipe, raw, choices = choose(scan, val_scan, name, chosen_machine, resolution)
    params = validate_params(raw, str(out))
    header = [
        f"Made by `seqgan new-config` for {scan.folder} ({'CPU' if chosen_machine == 'cpu' else 'GPU'} machine).",
        f"Recipe: configs/{recipe}.yaml. Keys marked 'new-config:' were chosen for this data; every other",
        "value is the recipe's (workflow/schemas/params.schema.yaml explains each key).",
        f"Use it with: seqgan use-config {name}",
    ]
    out.write_text(render(raw, choices, header))
    print(f"wrote {out} (recipe: configs/{recipe}.yaml)")
    for key, why in choices.items():
        print(f"  {key}: {json.dumps(lookup(raw, key))}  ({why})")

    from seqgan.preflight import preflight

    report = preflight(params, root=Path.cwd(), source=str(out))
    print(report.text())
    held = raw["data"]["folder"]["val_holdout_fraction"]
    split_images = {
        "train": scan.images - (0 if val_scan else round(scan.images * held)),
        "val": val_scan.images if val_scan else round(scan.images * held),
    }
    estimate = main_job_estimate(raw, _plan_counts(raw, "results/fig2_val_loss.pdf"), split_images)
    print(f"\nRun it:\n  seqgan use-config {name} && snakemake results/fig2_val_loss.pdf --cores all")
    if estimate is not None:
        seconds, how = estimate
        print(f"Expected time of the main job here: about {seconds / 60:.0f} min ({how}).")
    else:
        print(
            "Expected time: no measured job times for this recipe on this machine (the reference run "
            "measured the embedded recipe on a CPU); benchmarks/estimate_gpu_hours.py estimates GPU hours."
        )
    if report.problems:
        raise SystemExit(1)
    return out
