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

from seqgan.config import Params, ParamsError, load_params, params_hash
from seqgan.io import atomic_write_text

RESUME_ROOT = Path("work/resume")
CONFIGS_DIR = Path("configs")


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
        log_dir=Path(args.log_dir),
    )
    atomic_write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


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
