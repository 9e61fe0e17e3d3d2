# Paths and helpers shared by every rule file. Paths are derived from params.yaml values only.
import sys
from pathlib import Path

PARAMS_FILE = "params.yaml"
# The interpreter running Snakemake runs the package too: works without an activated virtualenv.
SEQGAN = f'"{sys.executable}" -m seqgan'
DATA_DIR = f"data/{config['data']['name']}"
MODELS_DIR = "models"
RESULTS_DIR = "results"


def package_sources(*subpackages):
    """Source files of the computation a rule runs, as inputs: editing them reruns the rule.

    The glue (cli.py, config.py, io.py) is left out on purpose: a changed help text or error
    message must not retrain every model; parameter changes rerun rules through their params.
    """
    package = Path(workflow.basedir) / "seqgan"
    files = []
    for sub in subpackages:
        files += sorted((package / sub).glob("*.py"))
    return [str(f) for f in files]


def split_files(split):
    return {
        "manifest": f"{DATA_DIR}/{split}/manifest.json",
        "images": f"{DATA_DIR}/{split}/images.u8",
        "labels": f"{DATA_DIR}/{split}/labels.npy",
    }


SEMANTIC_WEIGHTS = f"{MODELS_DIR}/semantic/net.safetensors"
TOKENS_DIR = f"{DATA_DIR}/tokens"

# Phase-1 tokenizers: one per alpha of the sweep (named with Python's str(), as DVC prints floats)
# plus the no-perceptual-loss control.
PHASE1_VARIANTS = [f"alpha{a}" for a in config["tokenizer"]["alphas"]]
if config["tokenizer"]["control_no_perceptual"]:
    PHASE1_VARIANTS.append("control")
VARIANT_PATTERN = "|".join(v.replace(".", r"\.") for v in PHASE1_VARIANTS)
# Repeats of the alpha experiment: every phase-1 tokenizer, its tokens and its transformers exist once
# per training seed ("seed{S}" path level); run.seed (one of them) is the primary run that phase 2,
# sampling and the single-run figures use.
RUN_SEED = config["run"]["seed"]
EXPERIMENT_SEEDS = config["evaluation"]["experiment_seeds"]
SEED_PATTERN = "|".join(str(s) for s in EXPERIMENT_SEEDS)
TOKENIZER_PATTERN = f"phase1/({VARIANT_PATTERN})/seed({SEED_PATTERN})|phase2"
PHASE2_SOURCE = (
    f"{MODELS_DIR}/tokenizer/phase1/alpha{config['tokenizer']['phase2']['from_alpha']}/seed{RUN_SEED}/tokenizer.safetensors"
)


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
