"""`seqgan preflight`: what the requested targets need, checked before any job starts.

Without it a missing dataset fails in the first job's log, missing pretrained weights fail hours
later (after data preparation), and a machine whose CUDA is unusable trains on the CPU. The workflow
runs :func:`preflight` from Snakemake's ``onstart`` (not for a dry run, and not for the embedded
default, which needs nothing from outside): every problem goes into one report, naming what is
missing and what to do, and no job starts.

The checks follow the jobs Snakemake is about to run (:data:`RULE_NEEDS`): the raw data folders only
when ``prepare_data`` runs, a pretrained file only when a rule that loads it runs, CUDA only when a
job runs on ``run.device``. So a paper configuration's data preparation and model-size table run on
a CPU node, while its main job still stops there, naming the missing data, weights and GPU.

Checked: the raw data folders exist and hold images (counted per split and class; skipped for a
split that is already prepared), the pretrained weights (VGG16 for the perceptual loss, Inception
for FID, LPIPS's linear layers), ``tokenizer.phase1.init_from``, CUDA with at least
``run.gpus_per_job`` devices unless ``run.device: cpu`` says the CPU is meant, and free disk against
an upper-bound estimate of what the run writes (:func:`disk_estimate`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from seqgan.config import Params, load_params

__all__ = ["RULE_NEEDS", "Needs", "PreflightReport", "disk_estimate", "needs_preflight", "preflight"]

GB = 1e9

# `seqgan preflight TARGET...` runs Snakemake with this variable naming a file: the onstart hook
# writes its report there and stops before the first job, whatever the report says.
REPORT_ONLY_ENV = "SEQGAN_PREFLIGHT_REPORT"


@dataclass(frozen=True)
class Needs:
    """What one rule's jobs need from outside the repository."""

    raw_data: bool = False  # the raw image folders of data.folder (or LSUN's LMDB export)
    perceptual_weights: bool = False  # VGG16 of the perceptual loss, when semantic.backbone is vgg16
    lpips: bool = False  # LPIPS-VGG (VGG16 + linear layers) for reconstruction metrics without an embedded net
    fid_weights: bool = False  # Inception, when evaluation.fid_network is inception
    init_from: bool = False  # tokenizer.phase1.init_from
    device: bool = False  # runs on run.device: a GPU unless run.device says cpu


# Every rule of the workflow, with what its jobs need (tests/test_preflight.py checks this against the
# Snakefile's rules, so a new rule has to say what it needs). The report rules read results only.
RULE_NEEDS: dict[str, Needs] = {
    "prepare_data": Needs(raw_data=True),
    "train_semantic": Needs(device=True),
    "train_judge": Needs(device=True),
    "tokenizer_phase1": Needs(perceptual_weights=True, init_from=True, device=True),
    "tokenizer_phase2": Needs(perceptual_weights=True, device=True),
    "fid_reference": Needs(fid_weights=True, device=True),
    "eval_tokenizer": Needs(lpips=True, fid_weights=True, device=True),
    "encode_tokens": Needs(device=True),
    "train_ar": Needs(device=True),
    "train_nar": Needs(device=True),
    "sample": Needs(device=True),
    "eval_samples": Needs(fid_weights=True, device=True),
    "fig1_phase2_decoder": Needs(device=True),
    "fig3_visualization": Needs(device=True),
    "sample_grid": Needs(),
    "model_sizes": Needs(),
    "fig2_val_loss": Needs(),
    "fig6b_alpha_sweep": Needs(),
    "paper_table": Needs(),
    "hparam_audit": Needs(),
    "claims": Needs(),
    "power_pilot": Needs(),
    "all": Needs(),
}


# Which rules write each kind of output of :func:`disk_estimate`: the disk check counts only the kinds
# the planned jobs write (preparing the data needs room for the data, not for the checkpoints).
DISK_WRITERS: dict[str, frozenset[str]] = {
    "prepared data": frozenset({"prepare_data"}),
    "token arrays": frozenset({"encode_tokens"}),
    "checkpoints": frozenset(
        {"train_semantic", "train_judge", "tokenizer_phase1", "tokenizer_phase2", "train_ar", "train_nar"}
    ),
    "samples": frozenset({"sample"}),
}


def combined_needs(rules: Collection[str] | None) -> Needs:
    """What a set of rules needs together; ``None`` means every rule (the whole workflow)."""
    names = RULE_NEEDS if rules is None else rules
    unknown = sorted(set(names) - set(RULE_NEEDS))
    if unknown:
        raise KeyError(f"preflight: no entry in seqgan.preflight.RULE_NEEDS for rule(s) {', '.join(unknown)}")
    needs = [RULE_NEEDS[name] for name in names]
    return Needs(**{key: any(getattr(n, key) for n in needs) for key in Needs.__dataclass_fields__})


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


def _prepared_counts(params: Params, root: Path) -> dict[str, int]:
    """Image counts of the splits already prepared (from their manifests)."""
    counts = {}
    for split in ("train", "val"):
        manifest = _data_dir(params, root) / split / "manifest.json"
        if manifest.is_file():
            counts[split] = int(json.loads(manifest.read_text())["count"])
    return counts


def _check_data(params: Params, root: Path, report: PreflightReport) -> dict[str, int]:
    """Image counts per split still to prepare (from the raw folders) or prepared (manifests)."""
    counts = _prepared_counts(params, root)
    folder = params.data.folder
    raw = {"train": folder.train_dir, "val": folder.val_dir or folder.train_dir}
    for split in ("train", "val"):
        if split in counts:
            report.facts.append(
                f"data {split}: prepared ({counts[split]:,} images in {_data_dir(params, root) / split})"
            )
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
        per_class = f" in {classes:,} class folders" if folder.layout == "classes" else ""
        if folder.val_dir:
            counts[split] = images
            report.facts.append(f"data {split}: {images:,} images{per_class} in {source}")
            continue
        held = round(images * folder.val_holdout_fraction)  # by a hash of each path: about this many
        counts[split] = held if split == "val" else images - held
        report.facts.append(
            f"data {split}: about {counts[split]:,} of the {images:,} images{per_class} in {source} "
            f"(data.folder.val_holdout_fraction = {folder.val_holdout_fraction} held out for validation)"
        )
    return counts


def _check_weights(params: Params, needs: Needs, report: PreflightReport) -> None:
    from seqgan.nets.pretrained import WEIGHTS, missing_weights_error

    needed = []
    vgg = params.semantic.backbone == "vgg16"
    if vgg and needs.perceptual_weights:
        needed.append("vgg16")
    if vgg and needs.lpips:
        needed += ["vgg16", "lpips_vgg"]
    if params.evaluation.fid_network == "inception" and needs.fid_weights:
        needed.append("inception")
    for name in dict.fromkeys(needed):
        path = WEIGHTS[name].path()
        if path.is_file() and path.stat().st_size > 0:
            report.facts.append(f"weights {name}: {path}")
        else:
            report.problems.append(str(missing_weights_error(name)).replace("\n", "\n           "))
    init = params.tokenizer.phase1.init_from
    if init and needs.init_from and not Path(init).is_file():
        report.problems.append(
            f"tokenizer.phase1.init_from = {init}: no such file (the tokenizer this configuration "
            "finetunes; train it first, e.g. with the imagenet configuration, and copy its "
            "tokenizer.safetensors and tokenizer.json there)"
        )


def _check_gpus(params: Params, needs: Needs, report: PreflightReport, cluster: bool) -> None:
    wanted = params.run.gpus_per_job
    if not needs_preflight(params):
        report.facts.append("device: the embedded default runs on the CPU (or a GPU when one is usable)")
        return
    if not needs.device:
        report.facts.append("device: none of these jobs trains or evaluates a network (the CPU does)")
        return
    if cluster:
        report.facts.append(
            f"device: the network jobs go to the cluster executor, which requests {wanted} GPU(s) per "
            "training job; CUDA is theirs, not this machine's"
        )
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


def _check_disk(
    params: Params, root: Path, images: dict[str, int], report: PreflightReport, rules: Collection[str] | None
) -> None:
    if not images:
        return  # without counts (missing data) there is nothing to estimate from
    estimate = disk_estimate(params, images, dvc_copies=False)
    if rules is not None:
        estimate = {kind: value for kind, value in estimate.items() if DISK_WRITERS[kind] & set(rules)}
        if not estimate:
            return  # these jobs write reports only
    if (root / ".dvc").is_dir():  # DVC copies every out into its cache (its default cache type)
        estimate["DVC cache copies"] = sum(estimate.values())
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


def preflight(
    params: Params,
    *,
    root: Path,
    source: str = "params.yaml",
    rules: Collection[str] | None = None,
    cluster: bool = False,
) -> PreflightReport:
    """The checks the jobs of ``rules`` need (every rule when ``None``); the report lists what was
    found and each problem with what to do. ``cluster``: the jobs run elsewhere (a cluster
    executor), so this machine's CUDA is not checked."""
    needs = combined_needs(rules)
    report = PreflightReport(source)
    if rules is not None:
        shown = ", ".join(sorted(set(rules))) or "none"
        report.facts.append(f"jobs to run: {shown}")
    images: dict[str, int] = {}
    if params.data.source != "synthetic":
        images = _check_data(params, root, report) if needs.raw_data else _prepared_counts(params, root)
    _check_weights(params, needs, report)
    _check_gpus(params, needs, report, cluster)
    _check_disk(params, root, images, report, rules)
    return report


def preflight_job(
    params_file: str, *, root: Path, targets: list[str] | None = None, profile: str | None = None
) -> None:
    """`seqgan preflight [TARGET...]`: print the report; exit 1 when anything stops the run.

    Without targets every rule's needs are checked (the whole workflow); with targets Snakemake plans
    them and the checks follow the jobs it would run (:func:`targets_preflight`)."""
    if targets:
        if Path(params_file).resolve() != (root / "params.yaml").resolve():
            raise SystemExit(
                f"error: --params {params_file} with targets: the workflow reads params.yaml only "
                "(switch configurations with `seqgan use-config NAME`)"
            )
        raise SystemExit(targets_preflight(targets, root=root, profile=profile))
    if profile:
        raise SystemExit("error: --profile plans targets: name the targets to check (e.g. results/fig2_val_loss.pdf)")
    report = preflight(load_params(params_file), root=root, source=params_file)
    print(report.text())
    if report.problems:
        raise SystemExit(1)


def targets_preflight(targets: list[str], *, root: Path, profile: str | None = None) -> int:
    """Plan ``targets`` with Snakemake (under ``profile``, e.g. the SLURM one, when given) and run the
    workflow's own onstart check on the jobs it would run, then stop before the first job. Returns
    the exit status (1 when anything stops the run)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="seqgan-preflight-") as tmp:
        report_file = Path(tmp) / "report.json"
        snakefile = Path(__file__).resolve().parents[1] / "Snakefile"
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), *targets]
        command += ["--profile", profile] if profile else ["--cores", "1"]
        result = subprocess.run(
            command,
            cwd=root,
            env={**os.environ, REPORT_ONLY_ENV: str(report_file)},
            capture_output=True,
            text=True,
        )
        if report_file.is_file():
            record = json.loads(report_file.read_text())
            print(record["text"])
            return 1 if record["problems"] else 0
    if result.returncode == 0:
        print(f"preflight of params.yaml: nothing to run for {' '.join(targets)} (every output is up to date)")
        return 0
    output = result.stdout + result.stderr
    start = output.find("Building DAG of jobs...")  # Snakemake's banner above it says nothing new
    print(output[max(start, 0) :], end="", file=sys.stderr)
    print(f"preflight: Snakemake could not plan {' '.join(targets)} (above); nothing was started", file=sys.stderr)
    return result.returncode or 1


def workflow_preflight(
    params: Params, *, root: Path, rules: Collection[str] | None = None, cluster: bool = False
) -> None:
    """Snakemake's ``onstart``, given the rules of the jobs it is about to run: nothing for the
    embedded default; otherwise the report, and no job starts when it lists a problem. Under
    ``seqgan preflight TARGET...`` (:data:`REPORT_ONLY_ENV` set) the report goes to that file and no
    job starts either way."""
    report_only = os.environ.get(REPORT_ONLY_ENV)
    if not needs_preflight(params) and not report_only:
        return
    report = preflight(params, root=root, rules=rules, cluster=cluster)
    if report_only:
        Path(report_only).write_text(json.dumps({"text": report.text(), "problems": report.problems}))
        raise SystemExit(0)  # a check by hand: plan and check, never run
    print(report.text(), file=sys.stderr if report.problems else sys.stdout, flush=True)
    if report.problems:
        raise SystemExit(1)  # the report above is the message; a traceback would bury it
