# Paths and helpers shared by every rule file. Paths are derived from params.yaml values only.
import sys
from pathlib import Path

PARAMS_FILE = "params.yaml"
# The interpreter running Snakemake runs the package too: works without an activated virtualenv.
SEQGAN = f'"{sys.executable}" -m seqgan'
DATA_DIR = f"data/{config['data']['name']}"
MODELS_DIR = "models"
RESULTS_DIR = "results"
# Every rule (except `all`) records its wall seconds, peak memory and CPU seconds in
# logs/benchmarks/<rule>/<its log path's wildcards>.tsv (Snakemake's benchmark columns s, max_rss,
# cpu_time, ...); `seqgan reference-run` gathers them. logs/ is no DVC out and git-ignored.

# Training jobs (tokenizer.smk, transformer.smk) run on run.gpus_per_job GPUs: a plain process, or
# torchrun with one DistributedDataParallel rank per GPU (seqgan/train/distributed.py). The count
# is declared as resource gpu for schedulers (workflow/profiles/); a local run ignores it unless a
# gpu limit is set. Not a rule params entry (changing it retrains nothing): the global batch is
# the same on any count (run.gpus_per_job in the schema says where results can still differ).
TRAIN_GPUS = config["run"]["gpus_per_job"]
TRAIN_SEQGAN = (
    SEQGAN
    if TRAIN_GPUS == 1
    else f'"{sys.executable}" -m torch.distributed.run --standalone --nproc_per_node {TRAIN_GPUS} -m seqgan'
)


GLUE_MODULES = {"seqgan.cli", "seqgan.config", "seqgan.artefacts.files", "seqgan.__main__"}


def code_of(*modules):
    """Source files of the computation a rule runs, as inputs: editing them reruns the rule.

    ``modules`` are the entry modules the rule's command uses (e.g. "seqgan.train.transformer");
    the files are their transitive closure of ``seqgan`` imports, read statically (``ast``, lazy
    imports inside functions included), so adding a module elsewhere in the package reruns nothing.
    The glue (cli, config, io) is left out on purpose: a changed help text or error message must
    not retrain every model; parameter changes rerun rules through their ``params:``.
    """
    import ast

    root = Path(workflow.basedir)
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen or name in GLUE_MODULES:
            continue
        path = root.joinpath(*name.split(".")).with_suffix(".py")
        if not path.is_file():
            package = root.joinpath(*name.split("."), "__init__.py")
            if package.is_file():
                path = package
            elif "." in name:  # `from seqgan.x import function`: the module is the parent
                todo.append(name.rsplit(".", 1)[0])
                continue
            else:
                raise ValueError(f"code_of: no module {name} under {root}")
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqgan"):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("seqgan")]
    files = set()
    for name in seen:
        path = root.joinpath(*name.split(".")).with_suffix(".py")
        files.add(str(path if path.is_file() else root.joinpath(*name.split("."), "__init__.py")))
    return sorted(files)


def command_code(command):
    """code_of() the modules that `seqgan <command>` imports (its cmd_ function and the cli.py
    helpers it calls), so a rule's code inputs follow its command without a hand-kept list."""
    import ast

    cli = Path(workflow.basedir) / "seqgan" / "cli.py"
    functions = {
        node.name: node for node in ast.parse(cli.read_text(), str(cli)).body if isinstance(node, ast.FunctionDef)
    }
    entry = "cmd_" + command.replace("-", "_")
    if entry not in functions:
        raise ValueError(f"command_code: seqgan/cli.py has no {entry}() for `seqgan {command}`")
    modules, seen, todo = set(), set(), [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqgan"):
                modules.add(node.module)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
                todo.append(node.func.id)
    return code_of(*sorted(modules))


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
# Tokenizer-only controls (no tokens, no transformers): the smallest-alpha tokenizer without the entropy
# regulariser, the other half of Table 5's usage comparison (claim 3).
TOKENIZER_VARIANTS = PHASE1_VARIANTS + (["noentropy"] if config["tokenizer"]["control_no_entropy"] else [])
TOKENIZER_VARIANT_PATTERN = "|".join(v.replace(".", r"\.") for v in TOKENIZER_VARIANTS)
# Repeats of the alpha experiment: every phase-1 tokenizer, its tokens and its transformers exist once
# per training seed ("seed{S}" path level); run.seed (one of them) is the primary run that phase 2,
# sampling and the single-run figures use.
RUN_SEED = config["run"]["seed"]
EXPERIMENT_SEEDS = config["evaluation"]["experiment_seeds"]
SEED_PATTERN = "|".join(str(s) for s in EXPERIMENT_SEEDS)
TOKENIZER_PATTERN = f"phase1/({TOKENIZER_VARIANT_PATTERN})/seed({SEED_PATTERN})|phase2"
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
