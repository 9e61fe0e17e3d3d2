"""`seqgan <command>`: the only entry point the workflow rules call.

It parses arguments, loads params.yaml and dispatches to the command's job function, which lives
in the layer it belongs to (``seqgan/train/tokenizer_job.py``, ``seqgan/evaluate/tokens.py``, ...);
nothing here shapes an output, so editing this file reruns no rule (seqgan/runs.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seqgan.config import ParamsError, load_params

# Job modules are imported inside each command: `seqgan validate-params` must start fast, without torch.

# ----------------------------------------------------------------------------------------------
# Commands: parse, then dispatch to the one job function of the command (in the layer it belongs
# to). Nothing here shapes an output (seqgan/runs.py lists this file as such).
# ----------------------------------------------------------------------------------------------


def cmd_validate_params(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    print(f"{args.params}: valid ({params.run.name}; data {params.data.name}, {params.data.resolution} px)")


def cmd_use_config(args: argparse.Namespace) -> None:
    from seqgan.configs import use_config

    use_config(args.name, Path(args.params))


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from seqgan.dvc_yaml import REPOSITORY, write_dvc_yaml

    changed = write_dvc_yaml(REPOSITORY, Path(args.params), Path(args.out))
    print(f"{args.out} {'written' if changed else 'already up to date'} for {args.params}")


def cmd_generate(args: argparse.Namespace) -> None:
    from seqgan.models import generate

    if args.objective == "ar":
        sampling = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    else:
        if args.steps is None:
            raise SystemExit("error: a NAR transformer needs --steps (decoding iterations, e.g. 12)")
        sampling = {"steps": args.steps, "temperature": args.temperature, "schedule": args.schedule}
    manifest = generate(
        args.transformer,
        args.tokenizer,
        args.out,
        objective=args.objective,
        num_samples=args.num,
        seed=args.seed,
        sampling=sampling,
        batch_size=args.batch_size,
        device=args.device,
    )
    print(f"{args.out}: {manifest['count']} samples ({args.objective}, seed {args.seed}, {sampling})")


def cmd_new_config(args: argparse.Namespace) -> None:
    from seqgan.new_config import new_config

    new_config(
        Path(args.images),
        args.name,
        val=Path(args.val) if args.val else None,
        machine=args.machine,
        resolution=args.resolution,
        force=args.force,
    )


def cmd_preflight(args: argparse.Namespace) -> None:
    from seqgan.preflight import preflight_job

    preflight_job(args.params, root=Path.cwd(), targets=args.targets, profile=args.profile)


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from seqgan.models import load_tokenizer, reconstruct_folder

    reconstruct_folder(
        load_tokenizer(args.tokenizer, args.device), Path(args.images), Path(args.out), batch_size=args.batch_size
    )


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from seqgan.data.prepare_job import prepare_split

    prepare_split(load_params(args.params), args.split, Path(args.out))


def cmd_train_semantic(args: argparse.Namespace) -> None:
    from seqgan.train.semantic_job import train_semantic_job

    train_semantic_job(
        load_params(args.params),
        data_dir=Path(args.data),
        out=Path(args.out),
        metrics_path=Path(args.metrics),
        log_dir=Path(args.log_dir),
        threads=args.threads,
    )


def cmd_train_judge(args: argparse.Namespace) -> None:
    from seqgan.train.semantic_job import train_judge_job

    train_judge_job(
        load_params(args.params),
        data_dir=Path(args.data),
        out=Path(args.out),
        metrics_path=Path(args.metrics),
        log_dir=Path(args.log_dir),
        threads=args.threads,
    )


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from seqgan.train.tokenizer_job import train_tokenizer_job

    train_tokenizer_job(
        load_params(args.params),
        phase=args.phase,
        variant=args.variant,
        seed=args.seed,
        data_dir=Path(args.data),
        semantic=args.semantic,
        init=args.init,
        out=Path(args.out),
        log_dir=Path(args.log_dir),
        threads=args.threads,
    )


def cmd_fid_reference(args: argparse.Namespace) -> None:
    from seqgan.evaluate.fid_reference_job import fid_reference_job

    fid_reference_job(
        load_params(args.params),
        split_dir=Path(args.split_dir),
        semantic=args.semantic,
        judge=args.judge,
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_eval_tokenizer(args: argparse.Namespace) -> None:
    from seqgan.evaluate.tokenizer_job import eval_tokenizer_job

    eval_tokenizer_job(
        load_params(args.params),
        tokenizer_file=Path(args.tokenizer),
        split_dir=Path(args.split_dir),
        reference=Path(args.reference),
        semantic=args.semantic,
        judge=args.judge,
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_encode_tokens(args: argparse.Namespace) -> None:
    from seqgan.evaluate.tokens import encode_tokens_job

    encode_tokens_job(
        load_params(args.params),
        tokenizer_file=Path(args.tokenizer),
        split_dir=Path(args.split_dir),
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_train_transformer(args: argparse.Namespace) -> None:
    from seqgan.train.transformer_job import train_transformer_job

    train_transformer_job(
        load_params(args.params),
        objective=args.objective,
        size=args.size,
        seed=args.seed,
        tokens=Path(args.tokens),
        out=Path(args.out),
        log_dir=Path(args.log_dir),
        threads=args.threads,
    )


def cmd_sample(args: argparse.Namespace) -> None:
    from seqgan.sample.sample_job import sample_job

    sample_job(
        load_params(args.params),
        objective=args.objective,
        transformer_file=Path(args.transformer),
        tokenizer_file=Path(args.tokenizer),
        seed=args.seed,
        num_samples=args.num_samples or None,
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_fig2(args: argparse.Namespace) -> None:
    from seqgan.report.fig2 import fig2_job

    fig2_job(load_params(args.params), runs=args.run, out=Path(args.out))


def cmd_model_sizes(args: argparse.Namespace) -> None:
    from seqgan.report.model_sizes import model_sizes_job

    model_sizes_job(load_params(args.params), out=Path(args.out))


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from seqgan.nets.pretrained import fetch_weights

    for name, path in fetch_weights(only=args.only or None).items():
        print(f"{name}: {path}")


def cmd_eval_samples(args: argparse.Namespace) -> None:
    from seqgan.evaluate.samples_job import eval_samples_job

    eval_samples_job(
        load_params(args.params),
        samples_dir=Path(args.samples),
        objective=args.objective,
        size=args.size,
        variant=args.variant,
        decoder=args.decoder,
        seed=args.seed,
        reference_file=Path(args.reference),
        reference_split_dir=Path(args.reference_split_dir) if args.reference_split_dir else None,
        semantic=args.semantic,
        judge=args.judge,
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_sample_grid(args: argparse.Namespace) -> None:
    from seqgan.report.sample_grids import sample_grid_job

    sample_grid_job(
        load_params(args.params),
        samples_dir=Path(args.samples),
        objective=args.objective,
        size=args.size,
        variant=args.variant,
        decoder=args.decoder,
        class_names_from=Path(args.class_names_from) if args.class_names_from else None,
        out=Path(args.out),
    )


def cmd_fig1(args: argparse.Namespace) -> None:
    from seqgan.report.fig1 import fig1_job

    fig1_job(
        load_params(args.params),
        samples_dir=Path(args.samples),
        phase1=Path(args.phase1),
        phase2=Path(args.phase2),
        val_dir=Path(args.val_dir),
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_fig3(args: argparse.Namespace) -> None:
    from seqgan.report.fig3 import fig3_job

    fig3_job(
        load_params(args.params),
        split_dir=Path(args.split_dir),
        variants=args.variant,
        out=Path(args.out),
        threads=args.threads,
    )


def cmd_fig6b(args: argparse.Namespace) -> None:
    from seqgan.report.fig6b import fig6b_job

    fig6b_job(load_params(args.params), rfid=args.rfid, generation=args.generation or [], out=Path(args.out))


def _artefact_layout(args: argparse.Namespace):
    from seqgan.report.artefacts import ArtefactLayout

    return ArtefactLayout(Path(args.results_dir), Path(args.models_dir))


def cmd_tables(args: argparse.Namespace) -> None:
    from seqgan.report.tables import tables_job

    tables_job(load_params(args.params), tables=args.table, layout=_artefact_layout(args), out_dir=Path(args.out_dir))


def cmd_hparam_audit(args: argparse.Namespace) -> None:
    from seqgan.report.audit import hparam_audit_job

    hparam_audit_job(load_params(args.params), params_file=str(args.params), out=Path(args.out))


def cmd_claims(args: argparse.Namespace) -> None:
    from seqgan.report.claims import claims_job

    claims_job(load_params(args.params), layout=_artefact_layout(args), out=Path(args.out))


def cmd_power_pilot(args: argparse.Namespace) -> None:
    from seqgan.report.pilot import pilot_job

    pilot_job(load_params(args.params), layout=_artefact_layout(args), out=Path(args.out))


def cmd_reference_run(args: argparse.Namespace) -> None:
    from seqgan.report.reference_run import reference_run_job

    reference_run_job(
        Path(args.params), Path(args.out), collect_only=args.collect_only, force=args.force, threads=args.threads
    )


def cmd_compare_reference(args: argparse.Namespace) -> None:
    from seqgan.report.compare_reference import compare_reference_job

    compare_reference_job(
        load_params(args.params),
        args.params,
        _artefact_layout(args),
        Path(args.reference),
        Path(args.out),
        strict=args.strict,
    )


def cmd_readme_tables(args: argparse.Namespace) -> None:
    from seqgan.report.readme_tables import readme_tables_job

    readme_tables_job(Path(args.reference), Path(args.readme), check=args.check)


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

    p = add("new-config", cmd_new_config, "write configs/<NAME>.yaml for a folder of your own images")
    p.add_argument("--images", required=True, help="folder of training images (one sub-folder per class, or flat)")
    p.add_argument("--val", help="separate validation folder (default: hold out part of --images)")
    p.add_argument("--name", required=True, help="name of the configuration and of the prepared data")
    p.add_argument(
        "--machine",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="recipe: the embedded default's (cpu) or a paper configuration's (gpu); auto = gpu when CUDA is usable",
    )
    p.add_argument("--resolution", type=int, help="training resolution (default: chosen from the images)")
    p.add_argument("--force", action="store_true", help="overwrite an existing configs/<NAME>.yaml")

    p = with_params(add("use-config", cmd_use_config, "make configs/<NAME>.yaml the active params.yaml"))
    p.add_argument("name", help="imagenet, ffhq, lsun_cat, lsun_bedroom or lsun_church")

    p = with_params(add("dvc-yaml", cmd_dvc_yaml, "write dvc.yaml from the Snakemake DAG and seqgan/runs.py"))
    p.add_argument("--out", default="dvc.yaml", help="file to write (default: dvc.yaml)")

    p = add("reconstruct", cmd_reconstruct, "a folder of images through a trained tokenizer (no params.yaml)")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (tokenizer.safetensors + .json) or file")
    p.add_argument("--images", required=True, help="folder of images (resized and centre-cropped to its resolution)")
    p.add_argument("--out", required=True, help="folder for the reconstructions (PNG) and psnr.csv")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when usable)")

    p = add("generate", cmd_generate, "sample images from a trained transformer and tokenizer (no params.yaml)")
    p.add_argument("--transformer", required=True, help="transformer directory (model.safetensors + .json) or file")
    p.add_argument("--tokenizer", required=True, help="the tokenizer whose codes it was trained on (dir or file)")
    p.add_argument("--objective", choices=["ar", "nar"], required=True, help="the transformer's (checked)")
    p.add_argument("--num", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="sample folder (images/, tokens.npy, labels.npy, manifest.json)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--top-k", type=int, default=0, help="AR: keep the k most likely codes (default 0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="AR: nucleus mass (default 1.0 = all)")
    p.add_argument("--steps", type=int, help="NAR: decoding iterations (required for NAR)")
    p.add_argument("--schedule", choices=["cosine", "linear"], default="cosine", help="NAR mask schedule")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when usable)")

    p = with_params(
        add("preflight", cmd_preflight, "check data folders, pretrained weights, GPUs and disk before a run")
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="workflow targets (files or rules): check only what the jobs they need require "
        "(default: everything the whole workflow needs)",
    )
    p.add_argument(
        "--profile",
        help="plan the targets under this Snakemake profile (e.g. workflow/profiles/slurm: the cluster's "
        "nodes, not this machine, then need CUDA)",
    )

    p = with_params(add("prepare-data", cmd_prepare_data, "write one prepared split (synthetic or from images)"))
    p.add_argument("--split", choices=["train", "val"], required=True)
    p.add_argument("--out", required=True, help="split directory, e.g. data/shapes32/train")

    def with_threads(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
        return p

    p = with_threads(
        with_params(add("train-semantic", cmd_train_semantic, "train the embedded default's semantic network"))
    )
    p.add_argument("--data", required=True, help="dataset directory holding train/ and val/")
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--metrics", required=True, help="JSON file for the validation accuracy and run facts")
    p.add_argument("--log-dir", required=True, help="directory for the training curve and DVCLive logs")

    p = with_threads(
        with_params(add("train-judge", cmd_train_judge, "train the embedded default's judge (evaluation network)"))
    )
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
    p.add_argument(
        "--seed",
        type=int,
        help="training seed, one of evaluation.confirmatory_seeds or pilot_seeds (default: run.seed)",
    )
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--log-dir", required=True)

    p = with_threads(with_params(add("fid-reference", cmd_fid_reference, "FID reference statistics of a split")))
    p.add_argument("--split-dir", required=True)
    p.add_argument("--semantic", help="semantic network weights (fid_network = semantic)")
    p.add_argument("--judge", help="judge weights (fid_network = judge)")
    p.add_argument("--out", required=True, help=".npz file (a .json with the metadata is written beside it)")

    p = with_threads(with_params(add("eval-tokenizer", cmd_eval_tokenizer, "reconstruction metrics of a tokenizer")))
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--split-dir", required=True)
    p.add_argument("--reference", required=True, help="FID reference statistics of that split")
    p.add_argument("--semantic", help="semantic network weights (embedded backbone)")
    p.add_argument("--judge", help="judge weights (fid_network = judge)")
    p.add_argument("--out", required=True)

    p = with_threads(
        with_params(add("encode-tokens", cmd_encode_tokens, "token ids of a split for transformer training"))
    )
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--split-dir", required=True)
    p.add_argument("--out", required=True, help="token split directory")

    p = with_threads(
        with_params(add("train-transformer", cmd_train_transformer, "train an AR or NAR transformer on token ids"))
    )
    p.add_argument("--objective", choices=["ar", "nar"], required=True)
    p.add_argument("--size", choices=["base", "large"], required=True)
    p.add_argument("--tokens", required=True, help="token directory holding train/ and val/")
    p.add_argument(
        "--seed",
        type=int,
        help="training seed, one of evaluation.confirmatory_seeds or pilot_seeds (default: run.seed)",
    )
    p.add_argument("--out", required=True, help="weights file (.safetensors); a .json sidecar is written beside it")
    p.add_argument("--log-dir", required=True, help="directory for curve.csv, train.csv and DVCLive logs")

    p = with_threads(
        with_params(add("sample", cmd_sample, "sample token grids with a transformer and decode them to PNGs"))
    )
    p.add_argument("--objective", choices=["ar", "nar"], required=True)
    p.add_argument("--transformer", required=True, help="transformer weights")
    p.add_argument("--tokenizer", required=True, help="tokenizer whose decoder renders the samples (phase 1 or 2)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--num-samples", type=int, default=0, help="default: evaluation.num_samples")
    p.add_argument("--out", required=True, help="sample directory (images/, tokens.npy, labels.npy, manifest.json)")

    p = with_params(add("fig2", cmd_fig2, "supplement Fig. 2: validation loss per alpha, with the evidence beside it"))
    p.add_argument(
        "--run",
        nargs=5,
        action="append",
        required=True,
        metavar=("VARIANT", "OBJECTIVE", "CURVE_CSV", "TRANSFORMER_JSON", "TOKENIZER_METRICS"),
    )
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

    p = with_sample_labels(
        with_threads(
            with_params(
                add(
                    "eval-samples",
                    cmd_eval_samples,
                    "generation FID, IS and the semantic classifier's view of a sample set",
                )
            )
        )
    )
    p.add_argument("--seed", type=int, required=True, help="the sampling seed of the sample set (checked)")
    p.add_argument(
        "--reference", required=True, help="FID reference statistics (.npz) of evaluation.generation_reference"
    )
    p.add_argument(
        "--reference-split-dir", help="the prepared split of that reference (classifier view, semantic network)"
    )
    p.add_argument("--semantic", help="semantic network weights (embedded backbone)")
    p.add_argument("--judge", help="judge weights (fid_network = judge)")
    p.add_argument("--out", required=True, help="JSON metrics file")

    p = with_sample_labels(
        with_params(add("sample-grid", cmd_sample_grid, "grid figure of a sample set (supplement Figs. 4-10)"))
    )
    p.add_argument("--class-names-from", help="a split manifest.json whose class_names label the rows")
    p.add_argument("--out", required=True, help="PDF; a PNG is written beside it")

    p = with_threads(
        with_params(
            add("fig1", cmd_fig1, "supplement Fig. 1: the same tokens through the phase-1 and phase-2 decoders")
        )
    )
    p.add_argument(
        "--samples", required=True, help="sample directory of the phase-1 tokenizer (its tokens.npy is decoded)"
    )
    p.add_argument("--phase1", required=True, help="the phase-1 tokenizer the phase-2 one was built from")
    p.add_argument("--phase2", required=True, help="the phase-2 tokenizer")
    p.add_argument("--val-dir", required=True, help="prepared validation split (reconstructions)")
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of per-image PSNR are written beside it")

    p = with_threads(with_params(add("fig3", cmd_fig3, "main Fig. 4: AR prediction vs reconstruction per alpha")))
    p.add_argument("--split-dir", required=True, help="prepared validation split (images shown and scored)")
    p.add_argument(
        "--variant",
        nargs=3,
        action="append",
        required=True,
        metavar=("VARIANT", "TOKENIZER", "AR_TRANSFORMER"),
        help="repeat per tokenizer variant",
    )
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of token accuracies are written beside it")

    p = with_params(add("fig6b", cmd_fig6b, "main Fig. 6b: rFID and generation FID against alpha"))
    p.add_argument(
        "--rfid",
        nargs=3,
        action="append",
        required=True,
        metavar=("VARIANT", "EXPERIMENT_SEED", "TOKENIZER_METRICS"),
        help="repeat per tokenizer and seed",
    )
    p.add_argument(
        "--generation",
        nargs=4,
        action="append",
        metavar=("OBJECTIVE", "VARIANT", "SAMPLING_SEED", "GENERATION_METRICS"),
        help="repeat per objective, variant and sampling seed (phase-1 decoder)",
    )
    p.add_argument("--out", required=True, help="PDF; a PNG and a CSV of every plotted number are written beside it")

    def with_artefacts(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--results-dir", default="results", help="results directory the artefacts are read from")
        p.add_argument("--models-dir", default="models", help="models directory (checkpoint sidecars)")
        return p

    p = with_artefacts(
        with_params(add("tables", cmd_tables, "paper Tables 1-6 and Fig. 8b: paper vs reproduced, with the runs"))
    )
    p.add_argument("--table", action="append", help="one of the table names (repeatable; default: all)")
    p.add_argument("--out-dir", required=True, help="directory for <table>.csv and <table>.md")

    p = with_params(
        add("hparam-audit", cmd_hparam_audit, "supplement Tables 3-4 beside the params in use, differences flagged")
    )
    p.add_argument("--out", required=True, help="CSV file; a Markdown table is written beside it")

    p = with_artefacts(
        with_params(add("claims", cmd_claims, "the paper's four claims with the reproduced evidence and verdicts"))
    )
    p.add_argument("--out", required=True, help="Markdown file (results/claims.md)")

    p = with_artefacts(
        with_params(
            add(
                "power-pilot",
                cmd_power_pilot,
                "claim 2's paired seed sd on evaluation.pilot_seeds, and the confirmatory seeds it calls for",
            )
        )
    )
    p.add_argument("--out", required=True, help="Markdown file (results/pilot/power.md); JSON beside it")

    p = with_params(
        add(
            "reference-run",
            cmd_reference_run,
            "run the main job and the default target from nothing, timed, and collect the reference",
        )
    )
    p.add_argument("--out", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument(
        "--force",
        action="store_true",
        help="start even though workflow outputs exist (clears logs/benchmarks; the timings then cover "
        "only the jobs that still run)",
    )
    p.add_argument(
        "--collect-only",
        action="store_true",
        help="do not run Snakemake: collect the reference from the finished run in this directory",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per job for every rule that takes --threads (Snakemake --set-threads; "
        "default: the workflow's one), e.g. 2 to see how another float rounding moves the numbers",
    )

    p = with_artefacts(
        with_params(
            add(
                "compare-reference",
                cmd_compare_reference,
                "this run's numbers and claim verdicts against the reference run's",
            )
        )
    )
    p.add_argument("--reference", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument(
        "--out",
        default="results/compare_reference.md",
        help="Markdown report (default: %(default)s); a JSON summary is written beside it",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="also exit 1 when a number differs beyond chance (Holm); by default only params, absent numbers "
        "and changed verdicts do",
    )

    p = add(
        "readme-tables",
        cmd_readme_tables,
        "rewrite the generated sections of the README and docs/ pages from the reference run",
    )
    p.add_argument("--reference", default="results/reference", help="reference directory (default: results/reference)")
    p.add_argument(
        "--readme",
        default="README.md",
        help="README to rewrite (default: README.md); the docs/ pages with generated sections are read beside it",
    )
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff when a file is stale")

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
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank fails alike: say it once
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
