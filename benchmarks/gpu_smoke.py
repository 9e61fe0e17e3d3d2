"""GPU smoke run: the paper-scale code paths exercised once, timed, on the device at hand.

Four stages (``benchmarks/gpu_smoke.sh`` runs them in order, each under its own time limit, and
keeps the log and a JSON summary in one output folder). The first, ``check`` (what runs where:
Python, torch, the GPU, and each package the project imports with the folder it came from), lives
in ``benchmarks/gpu_smoke_record.py`` with the records and the summary, because it must run where
a package is missing; this file has the other three:

``steps``
    A few training steps at the paper's shapes (``configs/imagenet.yaml``: 256 px, the 54.5M-parameter
    tokenizer, the large transformers on 16x16 = 256 codes of 1024) on random data, at the paper's
    per-GPU batch (global batch / ``run.gpus_per_job``): phase 1 at alpha 0 and 1 with the GAN on
    from the first step, phase 2 (attention decoder, frozen encoder and codebook), AR and NAR large
    with ``torch.compile`` off and on. Prints seconds per step (after warm-up steps; the compiled
    runs' first step, which compiles, is printed apart) and peak memory (CUDA: the allocator's peak
    per stage; CPU: the process's peak RSS so far), the precision (bf16 autocast on CUDA) and TF32;
    the transformer cases also tokens/s and the model FLOPs utilisation (MFU: 6 N + 12 L T d FLOPs
    per token, ``benchmarks/estimate_gpu_hours.py``, over the GPU's dense bf16 peak). VGG16 (the
    perceptual loss) uses the ImageNet weights when they are on disk; otherwise its architecture
    with random weights, which costs the same time and memory (the losses are then meaningless,
    and the line says so). A stage that runs out of GPU memory is reported and retried at half
    the batch.
``resume``
    ``seqgan train-transformer`` (the embedded AR base model on random codes; 40 steps on a CPU, 400
    on a GPU) killed (SIGKILL) after its first checkpoint and started again; its
    sidecar must say ``resumed_from_step`` > 0 and its weights must equal an uninterrupted run's:
    bit for bit on a CPU, within 1e-3 of the largest weight on a GPU (kernels there are not
    deterministic); the largest difference is printed.
``workflow``
    A reduced paper configuration through Snakemake with ``workflow/profiles/gpu-local`` up to
    ``results/fig2_val_loss.pdf``: ``configs/imagenet.yaml`` with seconds-scale sizes, and data as a
    folder of JPEGs in class folders made on the spot (the folder-data path, not the synthetic one).
    With VGG16 and Inception on disk the perceptual backbone is VGG16; without them the embedded
    semantic network stands in (its gate is off: a smoke run, not a result). Needs Snakemake.

``--dry`` runs every stage at CPU size (the embedded default's shapes, two steps, no compile): it
checks the script itself and runs in CI (tests/test_gpu_smoke.py). The numbers only mean something
in the full mode on a GPU.

With ``--out DIR`` every stage appends what it measured to ``DIR/records.jsonl``
(``gpu_smoke_record.py summary`` folds them into ``DIR/summary.json``).

Usage: python benchmarks/gpu_smoke.py {steps,resume,workflow,all} [--dry] [--steps N] [--work DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from estimate_gpu_hours import PEAK_TFLOPS, shape_of, transformer_train_flops_per_token
from gpu_smoke_record import SKIPPED, log, record, write_records_to
from PIL import Image

from seqgan.artefacts.checkpoints import load_weights
from seqgan.artefacts.tokens import write_token_split
from seqgan.config import Params, validate_params
from seqgan.data.synthetic import generate_images
from seqgan.losses.perceptual import SemanticPerceptualLoss, VGG16Backbone
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.pretrained import MissingWeightsError, require_weights
from seqgan.nets.transformer_factory import tokens_per_image
from seqgan.train.distributed import Distributed
from seqgan.train.runtime import compute_record, cpu_description, resolve_device
from seqgan.train.tokenizer import TokenizerRun
from seqgan.train.tokenizer_losses import timing_perceptual_loss
from seqgan.train.tokenizer_model import freeze_encoder_and_codebook
from seqgan.train.transformer import TransformerRun, training_mask

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "imagenet.yaml"
EMBEDDED = ROOT / "params.yaml"


# --------------------------------------------------------------------------------------------
# Stage 1: timed steps at the paper's shapes
# --------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"{cpu_description()} (torch {torch.__version__})"


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[int], Any], device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the first step, mean seconds per step after ``warmup`` more)."""
    sync(device)
    start = time.perf_counter()
    step(0)
    sync(device)
    first = time.perf_counter() - start
    for i in range(1, 1 + warmup):
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(1 + warmup, 1 + warmup + steps):
        step(i)
    sync(device)
    return first, (time.perf_counter() - start) / steps


def with_oom_retry(name: str, batch: int, device: torch.device, run: Callable[[int], dict[str, Any]]) -> None:
    """Run ``run(batch)``; on a CUDA out-of-memory error report it and retry at half the batch.

    ``run`` returns its measurements; the log line shows them and they are recorded for the summary.
    """
    while batch >= 1:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            measured = run(batch)
            peak = peak_memory_gib(device)
            log(f"{name:<36} batch {batch:>4}: {measured.pop('line')}, peak {peak:.2f} GiB")
            record("steps", case=name, batch=batch, peak_gib=round(peak, 3), **measured)
            return
        except Exception as error:  # noqa: BLE001 -- an OOM inside torch.compile arrives wrapped
            if not isinstance(error, torch.OutOfMemoryError) and "out of memory" not in str(error).lower():
                raise
            log(f"{name:<36} batch {batch:>4}: out of memory; retrying at half the batch")
            record("steps", case=name, batch=batch, out_of_memory=True)
            batch //= 2
        finally:
            torch._dynamo.reset()  # no compiled graphs (or their memory) carried into the next case
    raise RuntimeError(f"{name}: out of memory even at batch 1")


def dense_bf16_peak_tflops(device: torch.device) -> float | None:
    """The GPU's dense bf16 tensor-core peak (the MFU denominator); None where it is not known.

    H200 has the H100 SXM's tensor cores (the same peak); a PCIe or NVL H100 runs lower clocks and
    is not in the table.
    """
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name or "H200" in name:
        return None if ("PCIe" in name or "NVL" in name) else PEAK_TFLOPS["H100"]
    return PEAK_TFLOPS["A100"] if "A100" in name else None


def compute_fields(device: torch.device) -> dict[str, Any]:
    """What the step ran in: autocast precision and TF32, as the trainers' sidecars record them."""
    computed = compute_record(device)
    return {"precision": computed["precision"], "tf32": bool(computed["tf32"])}


def smoke_params(dry: bool, device: torch.device) -> Params:
    """The paper configuration (the embedded one when dry), GAN on from step 0, on ``device``."""
    raw = yaml.safe_load((EMBEDDED if dry else PAPER).read_text())
    raw["run"].update(device=device.type, gpus_per_job=1, accumulation_steps=1)
    raw["tokenizer"]["gan"].update(weight=0.1, start_step=0)
    return validate_params(raw, "gpu smoke")


@functools.cache
def vgg16_backbone() -> tuple[VGG16Backbone, list[torch.Tensor] | None, str]:
    """The perceptual loss's VGG16 (built once): ImageNet weights when on disk, else random ones."""
    import torchvision

    try:
        backbone = VGG16Backbone.from_imagenet()
        return backbone, backbone.lpips_layer_weights(), "VGG16 ImageNet weights"
    except MissingWeightsError:
        backbone = VGG16Backbone(torchvision.models.vgg16(weights=None))
        return backbone, None, "VGG16 architecture, random weights (weights absent; losses meaningless)"


def perceptual_loss(params: Params, alpha: float, device: torch.device) -> tuple[SemanticPerceptualLoss, str]:
    backbone, weights, note = vgg16_backbone()
    loss = timing_perceptual_loss(params, backbone, alpha, weights)
    return loss.to(device), note


def stage_steps(dry: bool, steps: int) -> None:
    device = resolve_device("auto")
    params = smoke_params(dry, device)
    ctx = Distributed.single(device)
    gpus = 1 if dry else yaml.safe_load(PAPER.read_text())["run"]["gpus_per_job"]
    res = params.data.resolution
    warmup = 1 if dry else 2
    log(f"== steps: {'dry (embedded shapes)' if dry else 'paper shapes'}, {res} px, {device_name(device)}")

    def tokenizer_case(phase: int, alpha: float) -> None:
        settings = params.tokenizer.phase1 if phase == 1 else params.tokenizer.phase2
        batch = 4 if dry else settings.batch_size // gpus

        def run(b: int) -> str:
            torch.manual_seed(0)
            tokenizer = build_tokenizer(params, phase)  # type: ignore[arg-type]
            if phase == 2:
                freeze_encoder_and_codebook(tokenizer)
            perceptual, note = perceptual_loss(params, alpha, device)
            trainer = TokenizerRun(params, phase, tokenizer, perceptual, ctx)  # type: ignore[arg-type]
            trainer.set_modes()
            x = torch.rand(b, 3, res, res, device=device).mul(2).sub(1).contiguous(memory_format=torch.channels_last)
            first, per_step = timed(lambda s: trainer.train_step(x, s), device, warmup, steps)
            return {
                "line": f"{per_step:.3f} s/step (first {first:.2f} s); {note}",
                "s_per_step": per_step,
                "first_step_s": first,
                "images_per_s": b / per_step,
                "perceptual": note,
                **compute_fields(device),
            }

        with_oom_retry(f"tokenizer phase {phase} alpha {alpha} GAN on", batch, device, run)

    tokenizer_case(1, 0.0)
    tokenizer_case(1, 1.0)
    tokenizer_case(2, 0.0)

    n = tokens_per_image(params)
    k = params.tokenizer.architecture.codebook_size
    for objective in ("ar", "nar"):
        for compiled in (False, True):
            settings = getattr(params.transformer, objective)
            batch = 4 if dry else settings.batch_size // gpus

            def run(b: int, objective: str = objective, compiled: bool = compiled) -> str:
                torch.manual_seed(0)
                trainer = TransformerRun(params, objective, "large", ctx, compile_model=compiled)  # type: ignore[arg-type]
                ids = torch.randint(0, k, (b, n))
                labels = torch.randint(0, params.transformer.num_classes, (b,)) if trainer.conditional else None
                schedule = params.transformer.nar.mask_schedule
                mask = training_mask(0, 0, b, n, schedule) if objective == "nar" else None
                first, per_step = timed(lambda s: trainer.train_step(ids, labels, mask, s), device, warmup, steps)
                state = "compiled" if trainer.compiled else "eager" + (" (compile is CUDA-only)" if compiled else "")
                flops = transformer_train_flops_per_token(shape_of(trainer.model)) * b * n
                peak = dense_bf16_peak_tflops(device)
                mfu = flops / per_step / (peak * 1e12) if peak else None
                shown = f", MFU {mfu:.1%} of {peak:g} TFLOP/s" if mfu is not None else ""
                return {
                    "line": f"{per_step:.3f} s/step (first {first:.2f} s), {state}{shown}",
                    "s_per_step": per_step,
                    "first_step_s": first,
                    "compiled": trainer.compiled,
                    "tokens_per_s": b * n / per_step,
                    "model_tflop_per_step": flops / 1e12,
                    "peak_tflops": peak,
                    "mfu": mfu,
                    **compute_fields(device),
                }

            with_oom_retry(f"transformer {objective} large compile={compiled}", batch, device, run)


# --------------------------------------------------------------------------------------------
# Stage 2: kill and resume
# --------------------------------------------------------------------------------------------


def resume_params(work: Path, device: torch.device) -> Path:
    raw = yaml.safe_load(EMBEDDED.read_text())
    raw["run"].update(device=device.type, gpus_per_job=1, accumulation_steps=1)
    t = raw["transformer"]
    # a GPU runs a step in milliseconds: enough steps after the first checkpoint to kill it mid-run
    iterations = 400 if device.type == "cuda" else 40
    t.update(checkpoint_every=20, eval_every=iterations // 4)  # 4 evaluations: the endpoint needs 3
    t["ar"].update(iterations=iterations, decay_start=iterations // 2)
    validate_params(copy.deepcopy(raw), "gpu smoke resume")
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def stage_resume(work: Path) -> None:
    device = resolve_device("auto")
    log(f"== resume: seqgan train-transformer (AR base, checkpoint every 20 steps) killed and resumed, {device}")
    raw = yaml.safe_load(EMBEDDED.read_text())
    k = raw["tokenizer"]["architecture"]["codebook_size"]
    side = raw["data"]["resolution"] // 2 ** (len(raw["tokenizer"]["architecture"]["channel_mult"]) - 1)
    tokens = work / "tokens"
    rng = np.random.default_rng(0)
    meta = {"tokenizer": {"file": "smoke", "sha256": "0" * 64}, "source": {"directory": "smoke"}}
    for split, count in (("train", 512), ("val", 128)):
        ids = rng.integers(0, k, (count, side, side))
        write_token_split(tokens / split, ids, np.zeros(count, np.int64), meta, codebook_size=k)
    params = resume_params(work, device)

    def command(out: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "seqgan",
            "train-transformer",
            "--params",
            str(params),
            "--objective",
            "ar",
            "--size",
            "base",
            "--seed",
            "0",
            "--tokens",
            str(tokens),
            "--out",
            f"{out}/model.safetensors",
            "--log-dir",
            f"{out}/curves",
            "--threads",
            "1",
        ]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for d in ("straight", "killed"):
        (work / d).mkdir()
    subprocess.run(command("out"), cwd=work / "straight", env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        command("out"), cwd=work / "killed", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not list((work / "killed").rglob("state.pt")):
        if proc.poll() is not None:
            raise RuntimeError(f"training ended before its first checkpoint: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("no checkpoint within 300 s")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log("killed after the first checkpoint was written")
    subprocess.run(command("out"), cwd=work / "killed", env=env, check=True, capture_output=True)
    a, _ = load_weights(work / "straight" / "out" / "model.safetensors")
    b, sidecar = load_weights(work / "killed" / "out" / "model.safetensors")
    resumed = sidecar["training"]["resumed_from_step"]
    scale = max(float(t.abs().max()) for t in a.values())
    worst = max(float((a[key].float() - b[key].float()).abs().max()) for key in a)
    identical = all(torch.equal(a[key], b[key]) for key in a)
    log(
        f"resumed_from_step {resumed}; weights vs the uninterrupted run: "
        f"{'bit-identical' if identical else f'largest difference {worst:.3g} (largest weight {scale:.3g})'}"
    )
    iterations = yaml.safe_load(params.read_text())["transformer"]["ar"]["iterations"]
    record(
        "resume",
        device=str(device),
        iterations=iterations,
        resumed_from_step=resumed,
        bit_identical=identical,
        largest_difference=worst,
        largest_weight=scale,
    )
    if not 0 < resumed < iterations:
        raise RuntimeError(f"the rerun did not resume mid-run (resumed_from_step {resumed} of {iterations})")
    if device.type == "cpu" and not identical:
        raise RuntimeError("a resumed CPU run must be bit-identical to an uninterrupted one")
    if worst > 1e-3 * scale:
        raise RuntimeError(f"resumed weights differ by {worst} (largest weight {scale})")


# --------------------------------------------------------------------------------------------
# Stage 3: a reduced paper configuration through Snakemake
# --------------------------------------------------------------------------------------------


def write_jpeg_folders(root: Path, classes: int, per_class: int, resolution: int, split: str) -> None:
    """``root/<class>/<i>.jpg``: the synthetic shapes as JPEGs in class folders (ImageFolder layout)."""
    images, labels = generate_images(classes * per_class, resolution, classes, seed=11, split=split)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class{int(label):02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.jpg", quality=90)


def pretrained_present() -> bool:
    try:
        for name in ("vgg16", "lpips_vgg", "inception"):
            require_weights(name)
        return True
    except MissingWeightsError:
        return False


def reduced_paper_params(data: Path, device: str, classes: int) -> dict[str, Any]:
    """configs/imagenet.yaml with seconds-scale sizes (the embedded default's), 32 px folder data."""
    raw = yaml.safe_load(PAPER.read_text())
    small = yaml.safe_load(EMBEDDED.read_text())
    raw["run"].update(name="gpu_smoke", device=device, gpus_per_job=1, accumulation_steps=1)
    raw["data"].update(name="smoke32", resolution=32)
    raw["data"]["folder"].update(train_dir=str(data / "train"), val_dir=str(data / "val"), workers=2)
    if not pretrained_present():
        raw["semantic"] = {**small["semantic"], "iterations": 60, "eval_every": 30, "checkpoint_every": 30}
        raw["semantic"]["min_val_accuracy"] = 0.0  # a smoke run: the gate is not what is checked
        raw["evaluation"]["fid_network"] = "semantic"
    tok = raw["tokenizer"]
    tok["architecture"] = {**small["tokenizer"]["architecture"], "base_channels": 8, "codebook_size": 32}
    tok["architecture"]["code_dim"] = 8
    tok["alphas"] = [1.0]  # one tokenizer: the paths, not the comparison
    tok["gan"].update(start_step=4, disc_channels=16)
    tok["phase1"].update(batch_size=8, iterations=12, checkpoint_every=6, log_every=4)
    tok["phase2"].update(batch_size=8, iterations=4, checkpoint_every=4, log_every=2)
    tr = raw["transformer"]
    tr["num_classes"] = classes
    for size in tr["sizes"].values():
        size.update(layers=1, heads=2, dim=16, mlp_dim=32)
    tr.update(eval_every=3, val_batches=2, checkpoint_every=5)  # 4 evaluations: the endpoint needs 3
    for objective in ("ar", "nar"):
        tr[objective].update(batch_size=8, iterations=10, decay_start=5)
    ev = raw["evaluation"]
    ev.update(batch_size=30, num_samples=6, experiment_seeds=[0], confirmatory_seeds=[0], sampling_seeds=[0])
    ev["sample_grid"]["classes"] = list(range(min(classes, 2)))
    return raw


def stage_workflow(work: Path, dry: bool) -> None:
    try:
        import snakemake  # noqa: F401
    except ImportError:
        log("== workflow: skipped, Snakemake is not installed in this Python")
        raise SystemExit(SKIPPED) from None
    device = "cpu" if dry else "cuda"
    classes = 3
    data = work / "raw"
    write_jpeg_folders(data / "train", classes, 40, 32, "train")
    write_jpeg_folders(data / "val", classes, 12, 32, "val")
    raw = reduced_paper_params(data, device, classes)
    validate_params(copy.deepcopy(raw), "gpu smoke workflow")
    run_dir = work / "workspace"
    run_dir.mkdir()
    (run_dir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    backbone = raw["semantic"]["backbone"]
    log(f"== workflow: reduced imagenet configuration (32 px JPEG folders, {classes} classes, {backbone}), {device}")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--workflow-profile",
        str(ROOT / "workflow" / "profiles" / "gpu-local"),
        "--cores",
        "all",
        "results/fig2_val_loss.pdf",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=run_dir, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        log(result.stderr[-6000:])
        raise RuntimeError(f"snakemake failed ({result.returncode})")
    done = [line for line in result.stderr.splitlines() if "steps (100%) done" in line]
    figure = run_dir / "results" / "fig2_val_loss.pdf"
    if not figure.is_file():
        raise RuntimeError(f"{figure} was not written")
    log(f"fig2 written in {elapsed:.0f} s ({done[-1].strip() if done else 'no summary line'})")
    trained = {}
    for sidecar in sorted((run_dir / "models").rglob("*.json")):
        training = json.loads(sidecar.read_text()).get("training") or {}
        compute = training.get("compute") or {}
        if compute:
            name = str(sidecar.relative_to(run_dir))
            entry = trained[name] = {
                "device": training.get("device"),
                "precision": compute.get("precision"),
                "tf32": compute.get("tf32"),
                "world_size": training.get("world_size", 1),
            }
            shown = f"{entry['device']}, {entry['precision']}, tf32 {entry['tf32']}, world size {entry['world_size']}"
            log(f"  {name}: {shown}")
    record(
        "workflow",
        seconds=round(elapsed, 1),
        jobs=done[-1].strip() if done else None,
        perceptual_backbone=backbone,
        trained=trained,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["steps", "resume", "workflow", "all"])
    parser.add_argument("--dry", action="store_true", help="CPU-sized shapes (CI)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case (default 2 dry, 3 full)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="output folder: measurements go to records.jsonl")
    args = parser.parse_args()
    if args.out is not None:
        write_records_to(args.out)
    # the shell script's time limit sends SIGTERM: exit through the cleanup below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    steps = args.steps or (2 if args.dry else 3)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_smoke_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.stage in ("steps", "all"):
            stage_steps(args.dry, steps)
        if args.stage in ("resume", "all"):
            (work / "resume").mkdir()
            stage_resume(work / "resume")
        if args.stage in ("workflow", "all"):
            (work / "workflow").mkdir()
            stage_workflow(work / "workflow", args.dry)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
