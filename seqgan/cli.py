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

from seqgan.config import Params, ParamsError, load_params, params_hash, with_seed
from seqgan.io import atomic_write_text

RESUME_ROOT = Path("work/resume")
CONFIGS_DIR = Path("configs")


def publish_logs(work_logs: Path, log_dir: str | Path) -> None:
    """Copy a run's logs from its resume directory to the declared log directory.

    Trainers log into the resume directory, not straight into Snakemake's declared outputs:
    Snakemake deletes the outputs of a failed job, and a resumed run would then continue from its
    checkpoint with the earlier part of its curves gone.
    """
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
    sem = params.semantic
    if sem.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; nothing to train (vgg16 is pretrained)")
    data_dir = Path(args.data)
    manifest = json.loads((data_dir / "train" / "manifest.json").read_text())
    run_key = {"semantic": params.raw["semantic"], "seed": params.run.seed, "data": manifest["sha256"]}
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
    )
    publish_logs(resume_path("train_semantic", run_key, "logs"), args.log_dir)
    atomic_write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


def phase1_variant(alpha: float | None) -> str:
    """Name of a phase-1 tokenizer: ``alpha<str(alpha)>`` (str() as DVC prints floats) or ``control``."""
    return "control" if alpha is None else f"alpha{alpha}"


def parse_phase1_variant(params: Params, variant: str) -> tuple[float, bool]:
    """``alpha0.5`` -> (0.5, perceptual on); ``control`` -> (0.0, perceptual off)."""
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
    from seqgan.data.store import open_image_store
    from seqgan.evaluate.fid import compute_reference, save_reference
    from seqgan.train.runtime import resolve_device

    params = load_params(args.params)
    _set_threads(args.threads)
    device = resolve_device(params.run.device)
    store = open_image_store(args.split_dir)
    network = _fid_network(params, _load_semantic(params, args.semantic, device), args.semantic, device)
    name = f"{params.data.name}/{Path(args.split_dir).name}"
    reference = compute_reference(store, network, name=name, batch_size=params.evaluation.batch_size, progress=True)
    save_reference(args.out, reference.mu, reference.sigma, reference.meta)
    print(f"{args.out}: {reference.meta['count']} images, {reference.meta['feature_dim']}-d {network.name} features")


def cmd_eval_tokenizer(args: argparse.Namespace) -> None:
    from seqgan.data.store import open_image_store
    from seqgan.evaluate.fid import load_reference
    from seqgan.evaluate.reconstruction import (
        embedded_perceptual_distance,
        evaluate_reconstruction,
        lpips_vgg_distance,
    )
    from seqgan.train.runtime import resolve_device
    from seqgan.train.tokenizer import load_tokenizer_checkpoint

    params = load_params(args.params)
    _set_threads(args.threads)
    device = resolve_device(params.run.device)
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
    from seqgan.data.store import open_image_store
    from seqgan.evaluate.fid import file_sha256
    from seqgan.evaluate.tokens import encode_split, write_token_split
    from seqgan.train.runtime import resolve_device
    from seqgan.train.tokenizer import load_tokenizer_checkpoint

    params = load_params(args.params)
    _set_threads(args.threads)
    device = resolve_device(params.run.device)
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
    from seqgan.evaluate.fid import file_sha256
    from seqgan.sample.generate import even_class_counts, generate_samples, sampling_from_params
    from seqgan.train.runtime import resolve_device
    from seqgan.train.tokenizer import load_tokenizer_checkpoint
    from seqgan.train.transformer import load_transformer_checkpoint

    params = load_params(args.params)
    _set_threads(args.threads)
    device = resolve_device(params.run.device)
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
    table = plot_fig2(runs, Path(args.out), title_note=note)
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

    p = with_params(add("train-semantic", cmd_train_semantic, "train the embedded default's semantic network"))
    p.add_argument("--data", required=True, help="dataset directory holding train/ and val/")
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--metrics", required=True, help="JSON file for the validation accuracy and run facts")
    p.add_argument("--log-dir", required=True, help="directory for the training curve and DVCLive logs")

    def with_threads(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
        return p

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

    return (ParamsError, DatasetError, MissingWeightsError, WeightsDownloadError)


if __name__ == "__main__":
    raise SystemExit(main())
