"""`seqgan preflight`: everything a paper-scale run needs, checked before any job starts.

Without it a missing dataset fails in the first job's log, missing pretrained weights fail hours
later (after data preparation), and a machine whose CUDA is unusable trains on the CPU. The workflow
runs :func:`preflight` from Snakemake's ``onstart`` (not for a dry run, and not for the embedded
default, which needs nothing from outside): every problem goes into one report, naming what is
missing and what to do, and no job starts.

Checked: the raw data folders exist and hold images (counted per split and class; skipped for a
split that is already prepared), the pretrained weights the params use (VGG16 for the perceptual
loss, Inception for FID, LPIPS's linear layers), ``tokenizer.phase1.init_from``, CUDA with at least
``run.gpus_per_job`` devices unless ``run.device: cpu`` says the CPU is meant, and free disk against
an upper-bound estimate of what the run writes (:func:`disk_estimate`).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from seqgan.config import Params, load_params

__all__ = ["PreflightReport", "disk_estimate", "needs_preflight", "preflight"]

GB = 1e9


@dataclass
class PreflightReport:
    source: str
    facts: list[str] = field(default_factory=list)  # what was found
    problems: list[str] = field(default_factory=list)  # what stops the run, each with what to do

    def text(self) -> str:
        lines = [f"preflight of {self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  ok:      {fact}" for fact in self.facts]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        if self.problems:
            lines.append("Nothing was started. Fix the problems above and run the same command again.")
        return "\n".join(lines)


def needs_preflight(params: Params) -> bool:
    """Everything but the embedded default (synthetic data, embedded semantic network) needs files,
    weights or GPUs from outside the repository."""
    return not (
        params.data.source == "synthetic"
        and params.semantic.backbone == "embedded"
        and params.evaluation.fid_network in ("semantic", "judge")
    )


def _data_dir(params: Params, root: Path) -> Path:
    return root / "data" / params.data.name


def _count_folder(folder: Path, layout: str) -> tuple[int, int]:
    """(images, class folders) under ``folder``, by the preparation code's own listing."""
    from seqgan.data.prepare import _list_folder

    listing = _list_folder(folder, layout, None)
    return len(listing.files), len(listing.class_names)


def _check_data(params: Params, root: Path, report: PreflightReport) -> dict[str, int]:
    """Image counts per split still to prepare (from the raw folders) or prepared (manifests)."""
    counts: dict[str, int] = {}
    folder = params.data.folder
    raw = {"train": folder.train_dir, "val": folder.val_dir or folder.train_dir}
    for split in ("train", "val"):
        manifest = _data_dir(params, root) / split / "manifest.json"
        if manifest.is_file():
            import json

            counts[split] = int(json.loads(manifest.read_text())["count"])
            report.facts.append(f"data {split}: prepared ({counts[split]:,} images in {manifest.parent})")
            continue
        source = Path(raw[split])
        key = "data.folder.val_dir" if split == "val" and folder.val_dir else "data.folder.train_dir"
        if not source.is_absolute():
            source = root / source
        if not source.is_dir():
            report.problems.append(
                f"{key} = {raw[split]}: no such folder ({source}). Put the {split} images there"
                + (" (one sub-folder per class)" if folder.layout == "classes" else "")
                + f" or set {key} in params.yaml to where they are."
            )
            continue
        if params.data.source == "lsun_lmdb":
            if not (source / "data.mdb").is_file():
                report.problems.append(f"{key} = {raw[split]}: no data.mdb in {source} (LSUN's LMDB export)")
            else:
                report.facts.append(f"data {split}: LSUN LMDB export at {source}")
            continue
        images, classes = _count_folder(source, folder.layout)
        if images == 0:
            report.problems.append(f"{key} = {raw[split]}: {source} holds no images (jpg, png, ...)")
            continue
        share = folder.val_holdout_fraction if not folder.val_dir else 1.0
        counts[split] = images if split == "train" or folder.val_dir else int(images * share)
        per_class = f" in {classes:,} class folders" if folder.layout == "classes" else ""
        report.facts.append(f"data {split}: {images:,} images{per_class} in {source}")
    return counts


def _check_weights(params: Params, report: PreflightReport) -> None:
    from seqgan.nets.pretrained import WEIGHTS, missing_weights_error

    needed = []
    if params.semantic.backbone == "vgg16":
        needed += ["vgg16", "lpips_vgg"]
    if params.evaluation.fid_network == "inception":
        needed.append("inception")
    for name in needed:
        path = WEIGHTS[name].path()
        if path.is_file() and path.stat().st_size > 0:
            report.facts.append(f"weights {name}: {path}")
        else:
            report.problems.append(str(missing_weights_error(name)).replace("\n", "\n           "))
    init = params.tokenizer.phase1.init_from
    if init and not Path(init).is_file():
        report.problems.append(
            f"tokenizer.phase1.init_from = {init}: no such file (the tokenizer this configuration "
            "finetunes; train it first, e.g. with the imagenet configuration, and copy its "
            "tokenizer.safetensors and tokenizer.json there)"
        )


def _check_gpus(params: Params, report: PreflightReport) -> None:
    wanted = params.run.gpus_per_job
    if not needs_preflight(params):
        report.facts.append("device: the embedded default runs on the CPU (or a GPU when one is usable)")
        return
    if params.run.device == "cpu":
        report.facts.append("device: run.device = cpu (the CPU is used deliberately)")
        return
    import torch

    if not torch.cuda.is_available():
        report.problems.append(
            f"run.device = {params.run.device}: CUDA is not usable here (torch.cuda.is_available() is False; "
            f"torch {torch.__version__}, CUDA build {torch.version.cuda}). This configuration trains on "
            f"{wanted} GPU(s) per job; run it on a GPU node, or set run.device: cpu to run on the CPU on purpose."
        )
        return
    count = torch.cuda.device_count()
    if count < wanted:
        report.problems.append(
            f"run.gpus_per_job = {wanted}, but this machine has {count} CUDA device(s); lower the key "
            "(the global batch stays the same) or run on a larger node"
        )
    else:
        report.facts.append(f"gpus: {count} CUDA device(s) ({torch.cuda.get_device_name(0)}), {wanted} per job")


def disk_estimate(params: Params, images: dict[str, int], *, dvc_copies: bool) -> dict[str, float]:
    """Upper-bound bytes the run writes, by kind: prepared splits (uint8 pixels), token arrays,
    checkpoints (weights + resume state with Adam's two moments: 4x the float32 parameters per run),
    sample folders (PNG bounded by the raw pixels) and, when DVC copies every out into its cache
    (its default cache type), the same again."""
    import torch

    from seqgan.nets.factory import build_discriminator, build_tokenizer
    from seqgan.nets.transformer_factory import build_transformer

    res = params.data.resolution
    pixels = res * res * 3
    total_images = sum(images.values())
    variants = len(params.tokenizer.alphas) + int(params.tokenizer.control_no_perceptual)
    seeds = len(params.evaluation.experiment_seeds)
    # claim 2's alpha ends also train at the confirmatory seeds beyond the experiment seeds
    extra_seeds = len(set(params.evaluation.confirmatory_seeds) - set(params.evaluation.experiment_seeds))
    end_runs = min(2, len(set(params.tokenizer.alphas))) * extra_seeds
    with torch.device("meta"):
        tokenizer = sum(p.numel() for p in build_tokenizer(params, 2).parameters())
        disc = sum(p.numel() for p in build_discriminator(params).parameters())
        transformers = {
            size: sum(p.numel() for p in build_transformer(params, size, "ar").parameters())
            for size in params.transformer.models
        }
    variant_runs = variants * seeds + end_runs  # phase-1 tokenizers with tokens and transformers
    tokenizer_runs = variant_runs + int(params.tokenizer.control_no_entropy) * seeds + 1
    transformer_runs = len(params.transformer.objectives) * variant_runs
    side = res // params.tokenizer.architecture.compression
    estimate = {
        "prepared data": float(total_images * pixels),
        "token arrays": float(total_images * side * side * 2 * variant_runs),
        "checkpoints": 4 * 4.0 * ((tokenizer + disc) * tokenizer_runs + sum(transformers.values()) * transformer_runs),
        "samples": float(
            params.evaluation.num_samples
            * pixels
            * len(params.evaluation.sampling_seeds)
            * len(params.transformer.objectives)
            * (variants + 1)
        ),
    }
    if dvc_copies:
        estimate["DVC cache copies"] = sum(estimate.values())
    return estimate


def _check_disk(params: Params, root: Path, images: dict[str, int], report: PreflightReport) -> None:
    if not images:
        return  # without counts (missing data) there is nothing to estimate from
    estimate = disk_estimate(params, images, dvc_copies=(root / ".dvc").is_dir())
    needed = sum(estimate.values())
    free = shutil.disk_usage(root).free
    parts = ", ".join(f"{kind} {value / GB:,.1f}" for kind, value in estimate.items())
    line = f"disk: about {needed / GB:,.1f} GB at most ({parts}); {free / GB:,.1f} GB free under {root}"
    if needed > free:
        report.problems.append(
            line + ". Free space, or move the repository (data/, models/, results/) to a larger disk."
        )
    else:
        report.facts.append(line)


def preflight(params: Params, *, root: Path, source: str = "params.yaml") -> PreflightReport:
    """Every check; the report lists what was found and each problem with what to do."""
    report = PreflightReport(source)
    images = _check_data(params, root, report) if params.data.source != "synthetic" else {}
    _check_weights(params, report)
    _check_gpus(params, report)
    _check_disk(params, root, images, report)
    return report


def preflight_job(params_file: str, *, root: Path) -> None:
    """`seqgan preflight`: print the report; exit 1 when anything stops the run."""
    report = preflight(load_params(params_file), root=root, source=params_file)
    print(report.text())
    if report.problems:
        raise SystemExit(1)


def workflow_preflight(params: Params, *, root: Path) -> None:
    """Snakemake's ``onstart``: nothing for the embedded default; otherwise the report, and no job
    starts when it lists a problem."""
    if not needs_preflight(params):
        return
    report = preflight(params, root=root)
    print(report.text(), file=sys.stderr if report.problems else sys.stdout, flush=True)
    if report.problems:
        raise SystemExit(1)  # the report above is the message; a traceback would bury it
