# Paths and helpers shared by every rule file. Paths are derived from params.yaml values only.
import os
import shlex
import sys
from pathlib import Path

DATA_DIR = f"data/{config['data']['name']}"
MODELS_DIR = "models"
RESULTS_DIR = "results"
# Every rule (except `all`) records its wall seconds, peak memory and CPU seconds in
# logs/benchmarks/<rule>/<its log path's wildcards>.tsv (Snakemake's benchmark columns s, max_rss,
# cpu_time, ...); `seqgan reference-run` gathers them. logs/ is no DVC out and git-ignored.

# Training jobs (tokenizer.smk, transformer.smk) run on run.gpus_per_job GPUs: a plain process, or
# torchrun with one DistributedDataParallel rank per GPU (seqgan/train/distributed.py). The count
# is declared as resource gpu for schedulers (workflow/profiles/); a local run ignores it unless a
# gpu limit is set. No params entry of any job (changing it retrains nothing): the global batch is
# the same on any count (run.gpus_per_job in the schema says where results can still differ).
TRAIN_GPUS = config["run"]["gpus_per_job"]


def visible_gpus():
    """GPUs this machine shows: CUDA_VISIBLE_DEVICES when set, else the lines of `nvidia-smi -L`."""
    import subprocess

    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([d for d in listed.split(",") if d.strip() and not d.strip().startswith("-")])
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


# Safe GPU scheduling: every job that runs networks on a GPU declares resource gpu (training jobs
# run.gpus_per_job, the others 1). Unless a gpu limit is given (--resources gpu=N, or a profile),
# the limit is the number of GPUs this machine shows, so no invocation starts more GPU ranks than it
# has; a machine without GPUs gets no limit (the embedded default runs its jobs side by side on the
# CPU cores), and a cluster's submitting process (no GPUs) leaves placement to the executor.
GPU_JOB = 1
if workflow.is_main_process and "gpu" not in workflow.global_resources:
    _GPUS = visible_gpus()
    if _GPUS:
        workflow.register_resource("gpu", _GPUS)
# Files DVC links or restores carry DVC's times, and a restored file made under other params
# contradicts Snakemake's records: the Snakefile calls this once all rules exist, before Snakemake
# plans (seqgan/dvc_realign.py says why, when and at what cost).
def snakemake_job_files(path):
    """None where no rule makes ``path`` (DVCLive's files beside a run's outputs); else the job's
    benchmark file, which Snakemake counts among its outputs (the oldest output decides a rerun)
    and DVC does not know."""
    for producer in workflow.rules:
        if producer.is_producer(path):
            benchmark = producer.benchmark is not None
            return [str(producer.expand_benchmark(producer.get_wildcards(path)))] if benchmark else []
    return None


def realign_dvc_outputs():
    """The stages `dvc status` reports up to date, with nothing changed upstream, get Snakemake's
    own touch (times and records, never content) when DVC moved files since Snakemake last ran."""
    from seqgan.dvc_realign import describe, realign

    # --max-checksum-file-size (not yet known while the Snakefile is read: then its default)
    limit = getattr(workflow.dag_settings, "max_checksum_file_size", None) or DAGSettings.max_checksum_file_size
    try:
        result = realign(Path.cwd(), job_files=snakemake_job_files, checksum_limit=limit)
    except Exception as error:  # a DVC lock held elsewhere, a failed touch: stop rather than rebuild
        raise WorkflowError(
            f"seqgan: DVC linked or restored outputs since Snakemake last ran, and aligning Snakemake's "
            f"view failed ({type(error).__name__}: {error}). Nothing was changed; run again once DVC "
            f"is free, or set SEQGAN_NO_REALIGN=1 to go on without (Snakemake may then rebuild what "
            f"DVC reports up to date)."
        ) from error
    message = describe(result)
    if message:
        print(message, file=sys.stderr)


# Every shell command calls `seqgan` (or `seqgan_train` for training jobs) as shell functions that
# run the package with the interpreter running Snakemake: no activated virtualenv needed, and the
# interpreter path (machine-specific) is no params value that would rerun jobs when it moves.
_PYTHON = shlex.quote(sys.executable)
_TRAIN_LAUNCHER = (
    f"{_PYTHON} -m seqgan"
    if TRAIN_GPUS == 1
    else f"{_PYTHON} -m torch.distributed.run --standalone --nproc_per_node {TRAIN_GPUS} -m seqgan"
)
# (Snakemake formats the prefix like a command: its braces are doubled.)
shell.prefix('set -euo pipefail; seqgan() {{ %s -m seqgan "$@"; }}; seqgan_train() {{ %s "$@"; }}; ' % (_PYTHON, _TRAIN_LAUNCHER))


# What shapes each rule's outputs is declared once, in seqgan/runs.py: the params keys (a rule's
# `params: run=run_params(...)`, so Snakemake reruns a job when one of its keys changes and for no
# other key) and the package files (`code=code_inputs(...)`: editing one reruns exactly the rules that
# list it). Resume keys, fingerprints, sidecars and dvc.yaml derive from the same declarations.
from seqgan.runs import code_files, run_values


def code_inputs(rule):
    """``rule``'s declared code files, relative to the working directory: the repository-relative
    paths of seqgan/runs.py when Snakemake runs in the repository (as DVC's deps are), and paths to
    the same files from a working directory elsewhere (tests, a scratch directory)."""
    root = Path(workflow.basedir)
    return [os.path.relpath(root / path) for path in code_files(rule)]


def run_params(rule):
    """The values of ``rule``'s declared keys for one job (wildcards fill ``{size}``, ``{variant}``...)."""
    return lambda wildcards: run_values(rule, config, dict(wildcards.items()))


def split_files(split):
    return {
        "manifest": f"{DATA_DIR}/{split}/manifest.json",
        "images": f"{DATA_DIR}/{split}/images.u8",
        "labels": f"{DATA_DIR}/{split}/labels.npy",
    }


SEMANTIC_WEIGHTS = f"{MODELS_DIR}/semantic/net.safetensors"
JUDGE_WEIGHTS = f"{MODELS_DIR}/judge/net.safetensors"
TOKENS_DIR = f"{DATA_DIR}/tokens"

# Phase-1 tokenizers: one per alpha of the sweep (named with Python's str(), as DVC prints floats)
# plus the no-perceptual-loss control.
PHASE1_VARIANTS = [f"alpha{a}" for a in config["tokenizer"]["alphas"]]
if config["tokenizer"]["control_no_perceptual"]:
    PHASE1_VARIANTS.append("control")
VARIANT_PATTERN = "|".join(v.replace(".", r"\.") for v in PHASE1_VARIANTS)
# Tokenizer-only controls (no tokens, no transformers): the smallest-alpha tokenizer without the entropy
# regulariser, the other half of Table 5's usage comparison (claim 3).
TOKENIZER_VARIANTS = PHASE1_VARIANTS + (["noentropy"] if config["tokenizer"]["control_no_entropy"] else [])
TOKENIZER_VARIANT_PATTERN = "|".join(v.replace(".", r"\.") for v in TOKENIZER_VARIANTS)
# Repeats of the alpha experiment: every phase-1 tokenizer, its tokens and its transformers exist once
# per training seed ("seed{S}" path level), and so does the phase-2 tokenizer (claims 1 and 4 compare
# phase 1 and phase 2 over the seeds); run.seed (one of them) is the primary run that sampling and the
# single-run figures use. Claim 2's two alpha ends also train at the confirmatory seeds (a superset;
# which artefacts claims.md reads decides seqgan/report).
RUN_SEED = config["run"]["seed"]
EXPERIMENT_SEEDS = config["evaluation"]["experiment_seeds"]
CONFIRMATORY_SEEDS = config["evaluation"]["confirmatory_seeds"]
PILOT_SEEDS = config["evaluation"]["pilot_seeds"]  # the power pilot's runs (results/pilot/power.md)
SEED_PATTERN = "|".join(str(s) for s in dict.fromkeys([*EXPERIMENT_SEEDS, *CONFIRMATORY_SEEDS, *PILOT_SEEDS]))
TOKENIZER_PATTERN = f"phase1/({TOKENIZER_VARIANT_PATTERN})/seed({SEED_PATTERN})|phase2/seed({SEED_PATTERN})"
PHASE2_FROM = f"alpha{config['tokenizer']['phase2']['from_alpha']}"


def phase2_source(seed):
    """The phase-1 tokenizer phase 2 starts from: tokenizer.phase2.from_alpha of the same seed."""
    return f"{MODELS_DIR}/tokenizer/phase1/{PHASE2_FROM}/seed{seed}/tokenizer.safetensors"


def phase2_weights(seed):
    return f"{MODELS_DIR}/tokenizer/phase2/seed{seed}/tokenizer.safetensors"


def token_files(variant, seed, split):
    return {
        "tokens": f"{TOKENS_DIR}/{variant}/seed{seed}/{split}/tokens.npy",
        "labels": f"{TOKENS_DIR}/{variant}/seed{seed}/{split}/labels.npy",
        "manifest": f"{TOKENS_DIR}/{variant}/seed{seed}/{split}/manifest.json",
    }
DEFAULT_TARGETS = [
    split_files("train")["manifest"],
    split_files("val")["manifest"],
    f"{RESULTS_DIR}/tables/model_sizes.csv",
]
if config["semantic"]["backbone"] == "embedded":
    DEFAULT_TARGETS.append(f"{RESULTS_DIR}/metrics/semantic.json")


# ------------------------------------------------------------------------------------------------
# Inputs and arguments computed per job (functions live here, rules in the stage files).
# ------------------------------------------------------------------------------------------------


# tokenizer.smk
def semantic_input(wildcards=None):
    """The embedded semantic network when it is the perceptual / FID backbone (else nothing)."""
    return [SEMANTIC_WEIGHTS] if config["semantic"]["backbone"] == "embedded" else []

# tokenizer.smk
def semantic_arg(wildcards=None, input=None):
    return f"--semantic {SEMANTIC_WEIGHTS}" if config["semantic"]["backbone"] == "embedded" else ""

def fid_semantic_input(wildcards=None):
    """The semantic network where it is the FID network itself (evaluation.fid_network = semantic)."""
    return [SEMANTIC_WEIGHTS] if config["evaluation"]["fid_network"] == "semantic" else []

def fid_semantic_arg(wildcards=None, input=None):
    return f"--semantic {SEMANTIC_WEIGHTS}" if config["evaluation"]["fid_network"] == "semantic" else ""

def judge_input(wildcards=None):
    """The embedded judge when it is the evaluation network (evaluation.fid_network = judge)."""
    return [JUDGE_WEIGHTS] if config["evaluation"]["fid_network"] == "judge" else []

def judge_arg(wildcards=None, input=None):
    return f"--judge {JUDGE_WEIGHTS}" if config["evaluation"]["fid_network"] == "judge" else ""

# tokenizer.smk
def phase1_semantic_input(wildcards):
    """The control tokenizer has no perceptual loss, so it trains alongside the semantic network."""
    return [] if wildcards.variant == "control" else semantic_input()

# tokenizer.smk
def phase1_semantic_arg(wildcards, input=None):
    return "" if wildcards.variant == "control" else semantic_arg()

# transformer.smk
def transformer_paths(objective):
    prefix = f"{objective}/{{size}}/{{variant}}/seed{{seed}}"
    return {
        "weights": f"{MODELS_DIR}/transformer/{prefix}/model.safetensors",
        "sidecar": f"{MODELS_DIR}/transformer/{prefix}/model.json",
        "curve": f"{RESULTS_DIR}/curves/transformer/{prefix}/curve.csv",
    }

# transformer.smk
def sample_decoder(wildcards):
    """Phase-1 decoder of the variant, or the phase-2 decoder (only for the tokens it was built on)."""
    if wildcards.decoder == "phase1":
        return f"{MODELS_DIR}/tokenizer/phase1/{wildcards.variant}/seed{RUN_SEED}/tokenizer.safetensors"
    source = f"alpha{config['tokenizer']['phase2']['from_alpha']}"
    if wildcards.variant != source:
        raise ValueError(f"the phase-2 decoder decodes {source} tokens only, not {wildcards.variant}")
    return phase2_weights(RUN_SEED)

# report.smk
def fig2_inputs(wildcards=None):
    files = []
    for variant, objective in FIG2_RUNS:
        files += [
            f"{RESULTS_DIR}/curves/transformer/{objective}/{FIG2_SIZE}/{variant}/seed{RUN_SEED}/curve.csv",
            f"{MODELS_DIR}/transformer/{objective}/{FIG2_SIZE}/{variant}/seed{RUN_SEED}/model.json",
            f"{RESULTS_DIR}/metrics/tokenizer/phase1/{variant}/seed{RUN_SEED}.json",
        ]
    return files

# report.smk
def fig2_run_args(wildcards=None, input=None):
    return " ".join(
        f"--run {v} {o} {' '.join(fig2_inputs()[3 * i: 3 * i + 3])}" for i, (v, o) in enumerate(FIG2_RUNS)
    )

# generation.smk
def sample_manifest(objective, size, variant, decoder, seed):
    return f"{RESULTS_DIR}/samples/{objective}/{size}/{variant}/{decoder}/seed{seed}/manifest.json"

# figures.smk
def fig3_runs():
    """(variant, phase-1 tokenizer, AR transformer of FIGURE_SIZE) of the primary seed, per variant."""
    return [
        (
            v,
            f"{MODELS_DIR}/tokenizer/phase1/{v}/seed{RUN_SEED}/tokenizer.safetensors",
            f"{MODELS_DIR}/transformer/ar/{FIGURE_SIZE}/{v}/seed{RUN_SEED}/model.safetensors",
        )
        for v in PHASE1_VARIANTS
    ]
