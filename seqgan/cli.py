"""`seqgan <command>`: the only entry point the workflow rules call.

This is the one module that knows about files and rules: it reads params.yaml, turns its values
into explicit arguments of the library functions, and decides where resume state lives. Library
modules never read params.yaml themselves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import (
    NO_ENTROPY_VARIANT,
    Params,
    ParamsError,
    load_params,
    no_entropy_alpha,
    params_hash,
    with_seed,
    without_entropy_regulariser,
)

if TYPE_CHECKING:  # torch is imported lazily: `seqgan validate-params` must start fast
    import torch

RESUME_ROOT = Path("work/resume")
CONFIGS_DIR = Path("configs")


def publish_logs(work_logs: Path, log_dir: str | Path) -> None:
    """Copy a run's logs from its resume directory to the declared log directory.

    Trainers log into the resume directory, not straight into Snakemake's declared outputs:
    Snakemake deletes the outputs of a failed job, and a resumed run would then continue from its
    checkpoint with the earlier part of its curves gone. Under torchrun only rank 0 has logs (and
    publishes them); the other ranks would race it.
    """
    from seqgan.train.distributed import is_main_process

    if not is_main_process():
        return
    target = Path(log_dir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(work_logs, target)


def resume_path(rule: str, key: object, name: str = "state.pt") -> Path:
    """Resume state lives outside Snakemake's declared outputs (Snakemake deletes those on failure).

    The directory is keyed by a hash of everything that determines the run, so a changed parameter
    never resumes from a stale state.
    """
    return RESUME_ROOT / rule / params_hash(key) / name


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_validate_params(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    print(f"{args.params}: valid ({params.run.name}; data {params.data.name}, {params.data.resolution} px)")


def cmd_use_config(args: argparse.Namespace) -> None:
    source = CONFIGS_DIR / f"{args.name}.yaml"
    if not source.is_file():
        available = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
        raise SystemExit(f"error: no configuration {source}; available: {', '.join(available) or 'none'}")
    load_params(source)  # never install an invalid file
    target = Path(args.params)
    if target.is_file() and target.read_bytes() != source.read_bytes():
        backup = target.with_name(target.name + ".bak")
        shutil.copyfile(target, backup)
        print(f"previous {target} saved as {backup}")
    shutil.copyfile(source, target)
    print(f"{target} now holds {source}; run `snakemake -n` to see what will be (re)built")


def cmd_prepare_data(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    data = params.data
    out = Path(args.out)
    if data.source == "synthetic":
        from seqgan.data.synthetic import write_synthetic_split

        count = data.synthetic.train_images if args.split == "train" else data.synthetic.val_images
        manifest = write_synthetic_split(
            out,
            num_images=count,
            resolution=data.resolution,
            num_classes=data.synthetic.num_classes,
            seed=data.synthetic.seed,
            split=args.split,
        )
    else:
        manifest = _prepare_real_split(params, args.split, out)
    print(f"{out}: {manifest['count']} images, {manifest['num_classes']} classes, sha256 {manifest['sha256'][:12]}")


def _prepare_real_split(params: Params, split: str, out: Path) -> dict:
    from seqgan.data.prepare import prepare_image_folder, prepare_lsun_lmdb

    folder = params.data.folder
    if split == "val" and folder.val_dir:
        src, subset, fraction = folder.val_dir, "all", 0.0
    elif split == "val":
        src, subset, fraction = folder.train_dir, "holdout", folder.val_holdout_fraction
    else:
        src = folder.train_dir
        subset = "train" if not folder.val_dir and folder.val_holdout_fraction > 0 else "all"
        fraction = folder.val_holdout_fraction if subset == "train" else 0.0
    common = dict(
        resolution=params.data.resolution,
        max_image_pixels=folder.max_image_pixels,
        small_images=folder.small_images,
        subset=subset,
        holdout_fraction=fraction,
    )
    if params.data.source == "lsun_lmdb":
        return prepare_lsun_lmdb(src, out, **common)
    return prepare_image_folder(src, out, layout=folder.layout, workers=folder.workers, **common)


def cmd_train_semantic(args: argparse.Namespace) -> None:
    from seqgan.train.classifier import train_semantic_classifier
    from seqgan.train.runtime import resolve_device

    params = load_params(args.params)
    _set_threads(args.threads)
    sem = params.semantic
    if sem.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; nothing to train (vgg16 is pretrained)")
    data_dir = Path(args.data)
    manifest = json.loads((data_dir / "train" / "manifest.json").read_text())
    # The gate does not shape the training: changing it re-checks the finished run, never retrains.
    recipe = {k: v for k, v in params.raw["semantic"].items() if k != "min_val_accuracy"}
    run_key = {"semantic": recipe, "seed": params.run.seed, "data": manifest["sha256"]}
    metrics = train_semantic_classifier(
        data_dir / "train",
        data_dir / "val",
        Path(args.out),
        widths=sem.widths,
        iterations=sem.iterations,
        batch_size=sem.batch_size,
        lr=sem.lr,
        weight_decay=sem.weight_decay,
        warmup_steps=sem.warmup_steps,
        hflip=sem.hflip,
        seed=params.run.seed,
        device=resolve_device(params.run.device),
        checkpoint_every=sem.checkpoint_every,
        eval_every=sem.eval_every,
        resume_path=resume_path("train_semantic", run_key),
        log_dir=resume_path("train_semantic", run_key, "logs"),
        min_val_accuracy=sem.min_val_accuracy,
    )
    publish_logs(resume_path("train_semantic", run_key, "logs"), args.log_dir)
    atomic_write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


def phase1_variant(alpha: float | None) -> str:
    """Name of a phase-1 tokenizer: ``alpha<str(alpha)>`` (str() as DVC prints floats) or ``control``."""
    return "control" if alpha is None else f"alpha{alpha}"


def parse_phase1_variant(params: Params, variant: str) -> tuple[float, bool]:
    """``alpha0.5`` -> (0.5, perceptual on); ``control`` -> (0.0, perceptual off); ``noentropy`` ->
    (the sweep's smallest alpha, perceptual on; trained with
    :func:`seqgan.config.without_entropy_regulariser`)."""
    if variant == NO_ENTROPY_VARIANT:
        if not params.tokenizer.control_no_entropy:
            raise SystemExit("error: tokenizer.control_no_entropy is false; there is no noentropy tokenizer")
        return no_entropy_alpha(params), True
    if variant == "control":
        if not params.tokenizer.control_no_perceptual:
            raise SystemExit("error: tokenizer.control_no_perceptual is false; there is no control tokenizer")
        return 0.0, False
    known = {phase1_variant(a): a for a in params.tokenizer.alphas}
    if variant not in known:
        raise SystemExit(f"error: unknown tokenizer variant {variant!r}; params give {', '.join(known)} (+ control)")
    return known[variant], True


def _training_params(args: argparse.Namespace) -> Params:
    """params.yaml, with run.seed replaced by ``--seed`` (one of evaluation.experiment_seeds) if given."""
    params = load_params(args.params)
    return params if args.seed is None else with_seed(params, args.seed)


def _params_threads_device(args: argparse.Namespace) -> tuple[Params, torch.device]:
    """params.yaml, torch's CPU thread count (--threads) and the device (run.device) of a command
    that runs networks without training them."""
    from seqgan.train.runtime import resolve_device

    params = load_params(args.params)
    _set_threads(args.threads)
    return params, resolve_device(params.run.device)


def _set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def _semantic_weights(params: Params, path: str | None) -> Path | None:
    if params.semantic.backbone != "embedded":
        return None
    if not path:
        raise SystemExit("error: --semantic is required when semantic.backbone = embedded")
    return Path(path)


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from seqgan.train.tokenizer import train_tokenizer

    params = _training_params(args)
    _set_threads(args.threads)
    data_dir = Path(args.data)
    manifest = json.loads((data_dir / "train" / "manifest.json").read_text())
    if args.phase == 1:
        alpha, perceptual = parse_phase1_variant(params, args.variant)
        if args.variant == NO_ENTROPY_VARIANT:
            params = without_entropy_regulariser(params)
        init = Path(params.tokenizer.phase1.init_from) if params.tokenizer.phase1.init_from else None
        settings = {k: params.raw["tokenizer"][k] for k in ("architecture", "quantizer", "loss", "gan", "phase1")}
    else:
        if not args.init:
            raise SystemExit("error: phase 2 needs --init (the phase-1 tokenizer it starts from)")
        alpha, perceptual, init = params.tokenizer.phase2.alpha, True, Path(args.init)
        settings = {k: params.raw["tokenizer"][k] for k in ("architecture", "quantizer", "loss", "gan", "phase2")}
    run_key = {"phase": args.phase, "variant": args.variant, "settings": settings, "seed": params.run.seed,
               "data": manifest["sha256"], "semantic": params.raw["semantic"]}
    metrics = train_tokenizer(
        params,
        phase=args.phase,
        alpha=alpha,
        perceptual=perceptual,
        train_dir=data_dir / "train",
        semantic_weights=_semantic_weights(params, args.semantic) if perceptual else None,
        init_weights=init,
        out_path=Path(args.out),
        resume_path=resume_path(f"tokenizer_phase{args.phase}", run_key),
        log_dir=resume_path(f"tokenizer_phase{args.phase}", run_key, "logs"),
    )
    publish_logs(resume_path(f"tokenizer_phase{args.phase}", run_key, "logs"), args.log_dir)
    print(json.dumps(metrics, indent=2, default=str))


def _load_semantic(params: Params, path: str | None, device):
    """The embedded semantic network, or None for the VGG16 / Inception paper setting."""
    from seqgan.train.classifier import load_semantic_net

    weights = _semantic_weights(params, path)
    return None if weights is None else load_semantic_net(weights, device)


def _fid_network(params: Params, semantic_net, semantic_path: str | None, device):
    from seqgan.evaluate.fid import inception_feature_network, semantic_feature_network

    if params.evaluation.fid_network == "inception":
        return inception_feature_network(device)
    return semantic_feature_network(semantic_net, weights_file=semantic_path)


def cmd_fid_reference(args: argparse.Namespace) -> None:
    from seqgan.artefacts.images import open_image_store
    from seqgan.evaluate.fid import compute_reference, save_reference

    params, device = _params_threads_device(args)
    store = open_image_store(args.split_dir)
    network = _fid_network(params, _load_semantic(params, args.semantic, device), args.semantic, device)
    name = f"{params.data.name}/{Path(args.split_dir).name}"
    reference = compute_reference(store, network, name=name, batch_size=params.evaluation.batch_size, progress=True)
    save_reference(args.out, reference.mu, reference.sigma, reference.meta)
    print(f"{args.out}: {reference.meta['count']} images, {reference.meta['feature_dim']}-d {network.name} features")


def cmd_eval_tokenizer(args: argparse.Namespace) -> None:
    from seqgan.artefacts.images import open_image_store
    from seqgan.evaluate.fid import load_reference
    from seqgan.evaluate.reconstruction import (
        embedded_perceptual_distance,
        evaluate_reconstruction,
        lpips_vgg_distance,
    )
    from seqgan.train.tokenizer import load_tokenizer_checkpoint

    params, device = _params_threads_device(args)
    tokenizer, sidecar = load_tokenizer_checkpoint(args.tokenizer, params, device)
    semantic_net = _load_semantic(params, args.semantic, device)
    if semantic_net is not None:
        distance = embedded_perceptual_distance(semantic_net, weights_file=args.semantic)
    else:
        distance = lpips_vgg_distance(device)
    metrics = evaluate_reconstruction(
        tokenizer,
        open_image_store(args.split_dir),
        batch_size=params.evaluation.batch_size,
        device=device,
        fid_network=_fid_network(params, semantic_net, args.semantic, device),
        reference=load_reference(args.reference),
        perceptual_distance=distance,
        classifier=semantic_net,
        progress=True,
    )
    metrics["tokenizer"] = {"file": str(args.tokenizer), "phase": sidecar.get("phase"),
                            "alpha": sidecar.get("alpha"), "perceptual": sidecar.get("perceptual"),
                            "step": sidecar.get("step"), "git_revision": sidecar.get("git_revision")}
    atomic_write_text(args.out, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2))


def cmd_encode_tokens(args: argparse.Namespace) -> None:
    from seqgan.artefacts.files import file_sha256
    from seqgan.artefacts.images import open_image_store
    from seqgan.artefacts.tokens import write_token_split
    from seqgan.evaluate.tokens import encode_split
    from seqgan.train.tokenizer import load_tokenizer_checkpoint

    params, device = _params_threads_device(args)
    tokenizer, sidecar = load_tokenizer_checkpoint(args.tokenizer, params, device)
    store = open_image_store(args.split_dir)
    ids = encode_split(tokenizer, store, batch_size=params.evaluation.batch_size, device=device, progress=True)
    meta = {
        "tokenizer": {"file": str(args.tokenizer), "sha256": file_sha256(args.tokenizer),
                      "phase": sidecar.get("phase"), "alpha": sidecar.get("alpha"),
                      "perceptual": sidecar.get("perceptual"), "step": sidecar.get("step")},
        "source": {"directory": str(args.split_dir), "sha256": store.manifest["sha256"]},
    }
    manifest = write_token_split(args.out, ids, store.labels, meta,
                                 codebook_size=params.tokenizer.architecture.codebook_size)
    print(f"{args.out}: {manifest['count']} x {manifest['grid_h']}x{manifest['grid_w']} tokens")


def cmd_train_transformer(args: argparse.Namespace) -> None:
    from seqgan.train.transformer import train_transformer

    params = _training_params(args)
    _set_threads(args.threads)
    tokens = Path(args.tokens)
    manifests = {split: json.loads((tokens / split / "manifest.json").read_text()) for split in ("train", "val")}
    run_key = {"objective": args.objective, "size": args.size, "transformer": params.raw["transformer"],
               "seed": params.run.seed, "tokens": {k: m["tokens_sha256"] for k, m in manifests.items()}}
    metrics = train_transformer(
        params,
        objective=args.objective,
        size=args.size,
        train_tokens=tokens / "train",
        val_tokens=tokens / "val",
        out_path=Path(args.out),
        resume_path=resume_path(f"train_{args.objective}", run_key),
        log_dir=resume_path(f"train_{args.objective}", run_key, "logs"),
    )
    publish_logs(resume_path(f"train_{args.objective}", run_key, "logs"), args.log_dir)
    print(json.dumps(metrics, indent=2, default=str))


def cmd_sample(args: argparse.Namespace) -> None:
    from seqgan.artefacts.files import file_sha256
    from seqgan.sample.generate import (
        even_class_counts,
        generate_samples,
        sampling_from_params,
    )
    from seqgan.train.tokenizer import load_tokenizer_checkpoint
    from seqgan.train.transformer import load_transformer_checkpoint

    params, device = _params_threads_device(args)
    transformer, t_sidecar = load_transformer_checkpoint(args.transformer, params, device)
    tokenizer, k_sidecar = load_tokenizer_checkpoint(args.tokenizer, params, device)
    if t_sidecar.get("objective") != args.objective:
        raise SystemExit(f"error: {args.transformer} is a {t_sidecar.get('objective')} model, not {args.objective}")
    num = args.num_samples or params.evaluation.num_samples
    counts = even_class_counts(num, params.transformer.num_classes) if params.transformer.conditional else None
    meta = {
        "transformer_checkpoint": {"file": str(args.transformer), "sha256": file_sha256(args.transformer)},
        "tokenizer_checkpoint": {"file": str(args.tokenizer), "sha256": file_sha256(args.tokenizer),
                                 "phase": k_sidecar.get("phase")},
    }
    manifest = generate_samples(
        transformer, tokenizer, objective=args.objective, num_samples=num,
        batch_size=params.evaluation.batch_size, seed=args.seed, out_dir=Path(args.out),
        sampling=sampling_from_params(params, args.objective), class_counts=counts, meta=meta,
        device=device, progress=True,
    )
    print(f"{args.out}: {manifest['count']} samples ({args.objective}, seed {args.seed})")


def cmd_fig2(args: argparse.Namespace) -> None:
    from seqgan.report.fig2 import Fig2Run, plot_fig2

    params = load_params(args.params)
    runs = [Fig2Run(variant, objective, Path(curve), Path(sidecar), Path(metrics))
            for variant, objective, curve, sidecar, metrics in args.run]
    note = f"{params.run.name}, {params.transformer.models[0]} size, seed {params.run.seed}"
    table = plot_fig2(runs, Path(args.out), title_note=note, floors=params.evaluation.verdicts)
    atomic_write_text(Path(args.out).with_suffix(".csv"), table.to_csv(index=False))
    print(table.drop(columns=["sources"]).to_string(index=False))


def cmd_model_sizes(args: argparse.Namespace) -> None:
    import pandas as pd

    from seqgan.report.model_sizes import model_size_rows

    params = load_params(args.params)
    table = pd.DataFrame([asdict(row) for row in model_size_rows(params)])
    table["paper_parameters"] = table["paper_parameters"].astype("Int64")
    out = Path(args.out)
    atomic_write_text(out, table.to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), _model_sizes_markdown(table, params.run.name))
    print(table.to_string(index=False))


def _model_sizes_markdown(table, run_name: str) -> str:
    import pandas as pd

    shown = table.assign(
        parameters=(table.parameters / 1e6).map("{:.2f}M".format),
        paper_parameters=table.paper_parameters.map(lambda v: "" if pd.isna(v) else f"{v / 1e6:.1f}M"),
        relative_difference=table.relative_difference.map(lambda v: "" if pd.isna(v) else f"{v:+.2%}"),
    )
    header = f"# Model sizes ({run_name})\n\nBuilt on the meta device from the params in use.\n\n"
    return header + shown.to_markdown(index=False) + "\n"


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from seqgan.nets.pretrained import fetch_weights

    for name, path in fetch_weights(only=args.only or None).items():
        print(f"{name}: {path}")


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


def _check_sample_identity(samples, *, objective: str, decoder: str, seed: int | None, params: Params) -> None:
    """Refuse a sample directory that is not what the command line says it is."""
    m = samples.manifest
    problems = []
    if m.get("objective") != objective:
        problems.append(f"objective {m.get('objective')!r} != --objective {objective!r}")
    if seed is not None and int(m.get("seed", -1)) != seed:
        problems.append(f"seed {m.get('seed')!r} != --seed {seed}")
    phase = (m.get("tokenizer_checkpoint") or {}).get("phase")
    if phase is not None and f"phase{phase}" != decoder:
        problems.append(f"decoded with a phase-{phase} tokenizer, not the {decoder} decoder")
    if samples.conditional != params.transformer.conditional:
        problems.append(f"class-conditional = {samples.conditional}, params transformer.conditional = "
                        f"{params.transformer.conditional}")
    if problems:
        raise SystemExit(f"error: {samples.directory / 'manifest.json'}: " + "; ".join(problems))


def _sampling_text(sampling: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sampling.items())


def cmd_eval_samples(args: argparse.Namespace) -> None:
    from seqgan.artefacts.images import open_image_store
    from seqgan.artefacts.samples import open_sample_set, sample_set_record
    from seqgan.evaluate.fid import check_reference_matches, load_reference
    from seqgan.evaluate.generation import check_sample_resolution, evaluate_generation

    params, device = _params_threads_device(args)
    samples = open_sample_set(args.samples)
    _check_sample_identity(samples, objective=args.objective, decoder=args.decoder, seed=args.seed, params=params)
    reference = load_reference(args.reference)
    semantic_net = _load_semantic(params, args.semantic, device)
    network = _fid_network(params, semantic_net, args.semantic, device)
    try:
        check_reference_matches(reference, network)
        check_sample_resolution(samples, reference, network)
    except ValueError as exc:
        raise SystemExit(f"error: {args.reference}: {exc}") from None
    semantic = params.evaluation.fid_network == "semantic"
    if semantic and not args.reference_split_dir:
        raise SystemExit("error: --reference-split-dir is required when evaluation.fid_network = semantic")
    metrics = evaluate_generation(
        samples, network, reference,
        fid_network=params.evaluation.fid_network,
        batch_size=params.evaluation.batch_size,
        inception_score_splits=params.evaluation.verdicts.inception_score_splits,
        confident_threshold=params.evaluation.verdicts.confident_probability,
        histogram_noise_draws=params.evaluation.verdicts.histogram_noise_draws,
        reference_store=open_image_store(args.reference_split_dir) if semantic else None,
        progress=True,
    )
    source = reference.meta.get("source") or {}
    record = {
        **metrics,
        "seed": args.seed,
        "objective": args.objective,
        "size": args.size,
        "variant": args.variant,
        "decoder": args.decoder,
        "sampling": samples.manifest.get("sampling"),
        "reference": {
            "file": str(args.reference),
            "split": Path(source["directory"]).name if source.get("directory") else None,
            "name": reference.meta.get("name"),
            "count": reference.count,
            "selection": reference.meta.get("selection"),
            "source_sha256": source.get("sha256"),
        },
        "samples": sample_set_record(samples),
        "run": params.run.name,
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    shown = {k: record[k] for k in ("fid", "inception_score", "num_samples")}
    if record["classifier"]:
        c = record["classifier"]
        shown.update(confident_fraction=c["confident_fraction"], reference_confident_fraction=c["reference"]["confident_fraction"])
    print(json.dumps(shown, indent=2))


def cmd_sample_grid(args: argparse.Namespace) -> None:
    from seqgan.artefacts.samples import open_sample_set
    from seqgan.report.sample_grids import plot_sample_grid

    params = load_params(args.params)
    samples = open_sample_set(args.samples)
    _check_sample_identity(samples, objective=args.objective, decoder=args.decoder, seed=None, params=params)
    grid = params.evaluation.sample_grid
    class_names = json.loads(Path(args.class_names_from).read_text())["class_names"] if args.class_names_from else None
    m = samples.manifest
    title = (f"{args.objective.upper()} {args.size} on {args.variant} tokens, "
             f"{args.decoder.replace('phase', 'phase-')} decoder "
             f"({params.run.name})")
    description = (f"sampling: {_sampling_text(m.get('sampling') or {})}; transformer "
                   f"{(m.get('transformer_checkpoint') or {}).get('file')}; decoder "
                   f"{(m.get('tokenizer_checkpoint') or {}).get('file')}")
    try:
        layout = plot_sample_grid(samples, args.out, classes=grid.classes, columns=grid.columns, rows=grid.rows,
                                  title=title, description=description, class_names=class_names)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{args.out}: {layout.rows} x {layout.columns} samples, PNG {layout.width} x {layout.height} px")


def cmd_fig1(args: argparse.Namespace) -> None:
    import numpy as np

    from seqgan.artefacts.files import file_sha256
    from seqgan.artefacts.images import open_image_store
    from seqgan.artefacts.samples import open_sample_set
    from seqgan.report.fig1 import fig1_panels, plot_fig1, psnr_table
    from seqgan.train.tokenizer import load_tokenizer_checkpoint

    params, device = _params_threads_device(args)
    tok1, side1 = load_tokenizer_checkpoint(args.phase1, params, device)
    tok2, side2 = load_tokenizer_checkpoint(args.phase2, params, device)
    if side1.get("phase") != 1 or side2.get("phase") != 2:
        raise SystemExit(f"error: --phase1 {args.phase1} is phase {side1.get('phase')}, "
                         f"--phase2 {args.phase2} is phase {side2.get('phase')}")
    samples = open_sample_set(args.samples)
    decoded_with = (samples.manifest.get("tokenizer_checkpoint") or {}).get("sha256")
    if decoded_with and decoded_with != file_sha256(args.phase1):
        raise SystemExit(f"error: the samples in {args.samples} were decoded with another tokenizer than "
                         f"{args.phase1}; their ids belong to that tokenizer's codebook")
    store = open_image_store(args.val_dir)
    columns = params.evaluation.sample_grid.columns
    n, m = min(columns, len(samples)), min(columns, len(store))
    tokens = np.load(samples.directory / "tokens.npy")[:n]
    try:
        panels = fig1_panels(tok1, tok2, tokens, np.array(store.images[:m]), device)
    except ValueError as exc:
        raise SystemExit(f"error: {args.phase2}: {exc}") from None
    out = Path(args.out)
    csv_path = out.with_suffix(".csv")
    objective = str(samples.manifest.get("objective", "")).upper()
    caption = (
        f"Rows 1-2: the first {n} token grids of {objective} samples (seed {samples.seed}; {args.samples}) "
        f"decoded by the phase-1 decoder ({args.phase1}, alpha {side1.get('alpha')}) and by the phase-2 "
        f"decoder ({args.phase2}, alpha {side2.get('alpha')}); mean |phase 2 - phase 1| = "
        f"{panels.sample_decoder_difference:.1f} / 255.\n"
        f"Rows 3-5: the first {m} images of {args.val_dir}, their phase-1 token grids decoded by each decoder; "
        f"mean PSNR {np.mean(panels.psnr_phase1):.2f} dB (phase 1) vs {np.mean(panels.psnr_phase2):.2f} dB "
        f"(phase 2), per image in {csv_path.name}. Run {params.run.name}."
    )
    plot_fig1(panels, out, title="Supplement Fig. 1: the same tokens through the phase-1 and phase-2 decoders",
              caption=caption, sample_label=f"{objective} sample")
    table = psnr_table(panels, range(m), store.labels[:m], store.class_names)
    atomic_write_text(csv_path, table.to_csv(index=False))
    print(table.to_string(index=False))


def cmd_fig3(args: argparse.Namespace) -> None:
    from seqgan.artefacts.files import file_sha256
    from seqgan.artefacts.images import open_image_store
    from seqgan.report.fig3 import (
        Fig3Variant,
        check_pairing,
        compute_fig3,
        fig3_table,
        plot_fig3,
    )
    from seqgan.train.tokenizer import load_tokenizer_checkpoint
    from seqgan.train.transformer import load_transformer_checkpoint

    params, device = _params_threads_device(args)
    variants, runs = [], set()
    for name, tokenizer_file, transformer_file in args.variant:
        alpha, perceptual = parse_phase1_variant(params, name)
        tokenizer, k_sidecar = load_tokenizer_checkpoint(tokenizer_file, params, device)
        if (k_sidecar.get("phase"), k_sidecar.get("perceptual"), k_sidecar.get("alpha")) != (1, perceptual, alpha):
            raise SystemExit(f"error: {tokenizer_file} is not the phase-1 {name} tokenizer (its sidecar records "
                             f"phase {k_sidecar.get('phase')}, alpha {k_sidecar.get('alpha')}, "
                             f"perceptual {k_sidecar.get('perceptual')})")
        transformer, t_sidecar = load_transformer_checkpoint(transformer_file, params, device)
        try:
            check_pairing(tokenizer_file, file_sha256(tokenizer_file), transformer_file, t_sidecar)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
        runs.add(f"{t_sidecar.get('size')}, seed {t_sidecar.get('training', {}).get('seed')}")
        variants.append(Fig3Variant(name, tokenizer, transformer, tokenizer_file, transformer_file))
    store = open_image_store(args.split_dir)
    result = compute_fig3(
        variants, store.images, store.labels, class_names=store.class_names, split=str(args.split_dir),
        num_images=params.evaluation.visualization_images, batch_size=params.evaluation.batch_size, device=device,
    )
    note = (f"{params.run.name}: first {len(result.inputs)} of {result.split_count} images of {args.split_dir}; "
            f"AR transformers {' / '.join(sorted(runs))}")
    plot_fig3(result, Path(args.out), title_note=note)
    table = fig3_table(result)
    atomic_write_text(Path(args.out).with_suffix(".csv"), table.to_csv(index=False))
    summary = table[table.row == "split_mean"]
    print(summary[["variant", "num_images", "token_accuracy", "token_accuracy_std", "constant_guess_accuracy"]]
          .to_string(index=False))


def cmd_fig6b(args: argparse.Namespace) -> None:
    from seqgan.report.fig6b import (
        MetricsFile,
        MetricsFileError,
        fig6b_table,
        plot_fig6b,
    )

    params = load_params(args.params)

    def seed(value: str, option: str) -> int:
        if not value.isdigit():
            raise SystemExit(f"error: {option}: seed must be a non-negative integer, got {value!r}")
        return int(value)

    rfid = [MetricsFile(v, seed(s, "--rfid"), Path(f)) for v, s, f in args.rfid]
    generation = [MetricsFile(v, seed(s, "--generation"), Path(f), objective=o) for o, v, s, f in args.generation or []]
    try:
        table = fig6b_table(rfid, generation, transformer_seed=params.run.seed)
    except MetricsFileError as exc:
        raise SystemExit(f"error: {exc}") from exc
    plot_fig6b(table, Path(args.out), title_note=params.run.name)
    atomic_write_text(Path(args.out).with_suffix(".csv"), table.to_csv(index=False))
    means = table[table.row == "mean_over_seeds"]
    print(means[["panel", "objective", "variant", "mean", "min", "max", "n"]].to_string(index=False))


def _artefact_layout(args: argparse.Namespace):
    from seqgan.report.artefacts import ArtefactLayout

    return ArtefactLayout(Path(args.results_dir), Path(args.models_dir))


def cmd_tables(args: argparse.Namespace) -> None:
    from seqgan.report.artefacts import MissingArtefactError
    from seqgan.report.tables import (
        TABLE_NAMES,
        build_table,
        table_frame,
        table_markdown,
    )

    params = load_params(args.params)
    out_dir = Path(args.out_dir)
    for name in args.table or TABLE_NAMES:
        try:
            table = build_table(params, name, _artefact_layout(args))
        except (MissingArtefactError, KeyError, ValueError) as exc:
            raise SystemExit(f"error: {name}: {exc}") from None
        frame = table_frame(table)
        atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False))
        atomic_write_text(out_dir / f"{name}.md", table_markdown(table, params))
        shown = frame[["row", "column", "paper", "reproduced", "difference", "status"]]
        print(f"{name}:\n{shown[shown.status == 'reproduced'].to_string(index=False)}")


def cmd_hparam_audit(args: argparse.Namespace) -> None:
    from seqgan.report.audit import audit, audit_frame, audit_markdown, flagged

    params = load_params(args.params)
    lines = audit(params)
    out = Path(args.out)
    atomic_write_text(out, audit_frame(lines).to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), audit_markdown(lines, params, str(args.params)))
    flags = flagged(lines)
    print(f"{args.params}: {len(flags)} difference(s) from the paper" + (f": {', '.join(flags)}" if flags else ""))


def cmd_claims(args: argparse.Namespace) -> None:
    from seqgan.report.artefacts import MissingArtefactError
    from seqgan.report.claims import claims_markdown, evaluate_claims

    params = load_params(args.params)
    try:
        claims = evaluate_claims(params, _artefact_layout(args))
    except (MissingArtefactError, KeyError) as exc:
        raise SystemExit(f"error: {exc}") from None
    atomic_write_text(args.out, claims_markdown(claims, params))
    for claim in claims:
        print(f"claim {claim.number}: {claim.verdict}")


def cmd_reference_run(args: argparse.Namespace) -> None:
    from seqgan.report.reference_run import (
        ReferenceRunError,
        collect_reference,
        run_reference,
    )

    try:
        if args.collect_only:
            ref = collect_reference(Path(args.params), Path.cwd(), Path(args.out))
        else:
            ref = run_reference(Path(args.params), Path.cwd(), Path(args.out), force=args.force,
                                threads=args.threads)
    except ReferenceRunError as exc:
        raise SystemExit(f"error: reference-run: {exc}") from None
    print(f"{ref.root}: reference written; next: `seqgan readme-tables` and commit {ref.root}")


def cmd_compare_reference(args: argparse.Namespace) -> None:
    from seqgan.report.compare_reference import (
        compare_with_reference,
        comparison_summary,
    )
    from seqgan.report.reference_layout import MissingReferenceError, ReferenceLayout

    params = load_params(args.params)
    try:
        comparison, text = compare_with_reference(params, args.params, _artefact_layout(args),
                                                  ReferenceLayout(Path(args.reference)))
    except (MissingReferenceError, ValueError) as exc:
        raise SystemExit(f"error: compare-reference: {exc}") from None
    atomic_write_text(args.out, text)
    atomic_write_text(Path(args.out).with_suffix(".json"),
                      json.dumps(comparison_summary(comparison, args.reference), indent=2) + "\n")
    print(text)
    if not comparison.agrees:
        raise SystemExit(f"compare-reference: {len(comparison.disagreements)} difference(s) from {args.reference} "
                         f"(see {args.out}): " + "; ".join(comparison.disagreements))


def cmd_readme_tables(args: argparse.Namespace) -> None:
    from seqgan.report.readme_tables import generated_readme, readme_diff

    readme = Path(args.readme)
    try:
        current, generated = generated_readme(Path(args.reference), readme)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: readme-tables: {exc}") from None
    if args.check:
        if current != generated:
            print(readme_diff(current, generated, str(readme)))
            raise SystemExit(f"readme-tables: {readme} differs from what {args.reference} generates; "
                             "run `seqgan readme-tables` and commit the README")
        print(f"{readme}: generated sections match {args.reference}")
        return
    if current != generated:
        atomic_write_text(readme, generated)
    print(f"{readme}: generated sections {'rewritten' if current != generated else 'already up to date'} "
          f"from {args.reference}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def with_params(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        return p

    with_params(add("validate-params", cmd_validate_params, "check a params file and report every problem"))

    p = with_params(add("use-config", cmd_use_config, "make configs/<NAME>.yaml the active params.yaml"))
    p.add_argument("name", help="imagenet, ffhq, lsun_cat, lsun_bedroom or lsun_church")

    p = with_params(add("prepare-data", cmd_prepare_data, "write one prepared split (synthetic or from images)"))
    p.add_argument("--split", choices=["train", "val"], required=True)
    p.add_argument("--out", required=True, help="split directory, e.g. data/shapes32/train")

    def with_threads(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
        return p

    p = with_threads(with_params(add("train-semantic", cmd_train_semantic, "train the embedded default's semantic network")))
    p.add_argument("--data", required=True, help="dataset directory holding train/ and val/")
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--metrics", required=True, help="JSON file for the validation accuracy and run facts")
    p.add_argument("--log-dir", required=True, help="directory for the training curve and DVCLive logs")

    p = with_threads(with_params(add("train-tokenizer", cmd_train_tokenizer, "train a phase-1 or phase-2 tokenizer")))
    p.add_argument("--phase", type=int, choices=[1, 2], required=True)
    p.add_argument("--variant", required=True, help="phase 1: alpha<value> or control; phase 2: phase2")
    p.add_argument("--data", required=True, help="dataset directory holding train/")
    p.add_argument("--semantic", help="semantic network weights (embedded backbone)")
    p.add_argument("--init", help="phase 2: the phase-1 tokenizer weights")
    p.add_argument("--seed", type=int, help="training seed, one of evaluation.experiment_seeds (default: run.seed)")
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--log-dir", required=True)

    p = with_threads(with_params(add("fid-reference", cmd_fid_reference, "FID reference statistics of a split")))
    p.add_argument("--split-dir", required=True)
    p.add_argument("--semantic", help="semantic network weights (fid_network = semantic)")
    p.add_argument("--out", required=True, help=".npz file (a .json with the metadata is written beside it)")

    p = with_threads(with_params(add("eval-tokenizer", cmd_eval_tokenizer, "reconstruction metrics of a tokenizer")))
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--split-dir", required=True)
    p.add_argument("--reference", required=True, help="FID reference statistics of that split")
    p.add_argument("--semantic", help="semantic network weights (embedded backbone)")
    p.add_argument("--out", required=True)

    p = with_threads(with_params(add("encode-tokens", cmd_encode_tokens, "token ids of a split for transformer training")))
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--split-dir", required=True)
    p.add_argument("--out", required=True, help="token split directory")

    p = with_threads(with_params(add("train-transformer", cmd_train_transformer, "train an AR or NAR transformer on token ids")))
    p.add_argument("--objective", choices=["ar", "nar"], required=True)
    p.add_argument("--size", choices=["base", "large"], required=True)
    p.add_argument("--tokens", required=True, help="token directory holding train/ and val/")
    p.add_argument("--seed", type=int, help="training seed, one of evaluation.experiment_seeds (default: run.seed)")
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--log-dir", required=True, help="directory for curve.csv, train.csv and DVCLive logs")

    p = with_threads(with_params(add("sample", cmd_sample, "sample token grids with a transformer and decode them to PNGs")))
    p.add_argument("--objective", choices=["ar", "nar"], required=True)
    p.add_argument("--transformer", required=True, help="transformer weights")
    p.add_argument("--tokenizer", required=True, help="tokenizer whose decoder renders the samples (phase 1 or 2)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--num-samples", type=int, default=0, help="default: evaluation.num_samples")
    p.add_argument("--out", required=True, help="sample directory (images/, tokens.npy, labels.npy, manifest.json)")

    p = with_params(add("fig2", cmd_fig2, "supplement Fig. 2: validation loss per alpha, with the evidence beside it"))
    p.add_argument("--run", nargs=5, action="append", required=True,
                   metavar=("VARIANT", "OBJECTIVE", "CURVE_CSV", "TRANSFORMER_JSON", "TOKENIZER_METRICS"))
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV summary are written beside it")

    p = with_params(add("model-sizes", cmd_model_sizes, "count parameters of every network (no data needed)"))
    p.add_argument("--out", required=True, help="CSV file; a Markdown table is written beside it")

    def with_sample_labels(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--samples", required=True, help="sample directory written by `seqgan sample`")
        p.add_argument("--objective", choices=["ar", "nar"], required=True)
        p.add_argument("--size", choices=["base", "large"], required=True)
        p.add_argument("--variant", required=True, help="alpha<value> or control (recorded)")
        p.add_argument("--decoder", choices=["phase1", "phase2"], required=True)
        return p

    p = with_sample_labels(with_threads(with_params(add(
        "eval-samples", cmd_eval_samples, "generation FID, IS and the semantic classifier's view of a sample set"))))
    p.add_argument("--seed", type=int, required=True, help="the sampling seed of the sample set (checked)")
    p.add_argument("--reference", required=True, help="FID reference statistics (.npz) of evaluation.generation_reference")
    p.add_argument("--reference-split-dir", help="the prepared split of that reference (classifier view, semantic network)")
    p.add_argument("--semantic", help="semantic network weights (embedded backbone)")
    p.add_argument("--out", required=True, help="JSON metrics file")

    p = with_sample_labels(with_params(add("sample-grid", cmd_sample_grid, "grid figure of a sample set (supplement Figs. 4-10)")))
    p.add_argument("--class-names-from", help="a split manifest.json whose class_names label the rows")
    p.add_argument("--out", required=True, help="PDF; a PNG is written beside it")

    p = with_threads(with_params(add("fig1", cmd_fig1, "supplement Fig. 1: the same tokens through the phase-1 and phase-2 decoders")))
    p.add_argument("--samples", required=True, help="sample directory of the phase-1 tokenizer (its tokens.npy is decoded)")
    p.add_argument("--phase1", required=True, help="the phase-1 tokenizer the phase-2 one was built from")
    p.add_argument("--phase2", required=True, help="the phase-2 tokenizer")
    p.add_argument("--val-dir", required=True, help="prepared validation split (reconstructions)")
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of per-image PSNR are written beside it")

    p = with_threads(with_params(add("fig3", cmd_fig3, "main Fig. 4: AR prediction vs reconstruction per alpha")))
    p.add_argument("--split-dir", required=True, help="prepared validation split (images shown and scored)")
    p.add_argument("--variant", nargs=3, action="append", required=True,
                   metavar=("VARIANT", "TOKENIZER", "AR_TRANSFORMER"), help="repeat per tokenizer variant")
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of token accuracies are written beside it")

    p = with_params(add("fig6b", cmd_fig6b, "main Fig. 6b: rFID and generation FID against alpha"))
    p.add_argument("--rfid", nargs=3, action="append", required=True,
                   metavar=("VARIANT", "EXPERIMENT_SEED", "TOKENIZER_METRICS"), help="repeat per tokenizer and seed")
    p.add_argument("--generation", nargs=4, action="append",
                   metavar=("OBJECTIVE", "VARIANT", "SAMPLING_SEED", "GENERATION_METRICS"),
                   help="repeat per objective, variant and sampling seed (phase-1 decoder)")
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of every plotted number are written beside it")

    def with_artefacts(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--results-dir", default="results", help="results directory the artefacts are read from")
        p.add_argument("--models-dir", default="models", help="models directory (checkpoint sidecars)")
        return p

    p = with_artefacts(with_params(add("tables", cmd_tables, "paper Tables 1-6 and Fig. 8b: paper vs reproduced, with the runs")))
    p.add_argument("--table", action="append", help="one of the table names (repeatable; default: all)")
    p.add_argument("--out-dir", required=True, help="directory for <table>.csv and <table>.md")

    p = with_params(add("hparam-audit", cmd_hparam_audit, "supplement Tables 3-4 beside the params in use, differences flagged"))
    p.add_argument("--out", required=True, help="CSV file; a Markdown table is written beside it")

    p = with_artefacts(with_params(add("claims", cmd_claims, "the paper's four claims with the reproduced evidence and verdicts")))
    p.add_argument("--out", required=True, help="Markdown file (results/claims.md)")

    p = with_params(add("reference-run", cmd_reference_run,
                        "run the main job and the default target from nothing, timed, and collect the reference"))
    p.add_argument("--out", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument("--force", action="store_true",
                   help="start even though workflow outputs exist (clears logs/benchmarks; the timings then cover "
                        "only the jobs that still run)")
    p.add_argument("--collect-only", action="store_true",
                   help="do not run Snakemake: collect the reference from the finished run in this directory")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per job for every rule that takes --threads (Snakemake --set-threads; "
                        "default: the workflow's one), e.g. 2 to see how another float rounding moves the numbers")

    p = with_artefacts(with_params(add("compare-reference", cmd_compare_reference,
                                       "this run's numbers and claim verdicts against the reference run's")))
    p.add_argument("--reference", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument("--out", default="results/compare_reference.md",
                   help="Markdown report (default: %(default)s); a JSON summary is written beside it")

    p = add("readme-tables", cmd_readme_tables, "rewrite the README's generated sections from the reference run")
    p.add_argument("--reference", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument("--readme", default="README.md", help="README to rewrite (default: README.md)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff when the README is stale")

    p = add("fetch-weights", cmd_fetch_weights, "download VGG16 and Inception weights (needs network)")
    p.add_argument("--only", action="append", choices=["vgg16", "inception"], help="fetch only this one (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by the user's input or machine, reported as one message without a traceback.

    Imported lazily: importing torch for `seqgan validate-params` would cost seconds.
    """
    from seqgan.data.prepare import DatasetError
    from seqgan.nets.pretrained import MissingWeightsError, WeightsDownloadError
    from seqgan.train.gates import QualityGateError

    return (ParamsError, DatasetError, MissingWeightsError, WeightsDownloadError, QualityGateError)


if __name__ == "__main__":
    raise SystemExit(main())
