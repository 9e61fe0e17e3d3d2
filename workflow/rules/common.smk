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
    """Source files a rule's command runs, as inputs: editing the code reruns the rule."""
    package = Path(workflow.basedir) / "seqgan"
    files = [package / "config.py", package / "cli.py", package / "io.py"]
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
DEFAULT_TARGETS = [
    split_files("train")["manifest"],
    split_files("val")["manifest"],
    f"{RESULTS_DIR}/tables/model_sizes.csv",
]
if config["semantic"]["backbone"] == "embedded":
    DEFAULT_TARGETS.append(f"{RESULTS_DIR}/metrics/semantic.json")
