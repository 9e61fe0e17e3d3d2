"""`seqgan use-config`: make one of configs/*.yaml the active params.yaml, and dvc.yaml with it.

configs/embedded.yaml is the embedded default (a copy of the committed params.yaml), so
`seqgan use-config embedded` is the way back from a paper configuration or a new-config one.

dvc.yaml is generated from the Snakemake DAG of the active params (:mod:`seqgan.dvc_yaml`), so a
configuration switch rewrites it too; otherwise `dvc repro` would plan the previous
configuration's stages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seqgan.config import load_params

CONFIGS_DIR = Path("configs")


REPOSITORY = Path(__file__).resolve().parents[1]  # holds the Snakefile


def use_config(name: str, params_file: Path) -> None:
    """Copy configs/<name>.yaml (of the working directory) to ``params_file`` (the previous file kept
    as .bak) and regenerate dvc.yaml beside it."""
    source = CONFIGS_DIR / f"{name}.yaml"
    if not source.is_file():
        available = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
        raise SystemExit(f"error: no configuration {source}; available: {', '.join(available) or 'none'}")
    load_params(source)  # never install an invalid file
    target = Path(params_file)
    if target.is_file() and target.read_bytes() != source.read_bytes():
        backup = target.with_name(target.name + ".bak")
        shutil.copyfile(target, backup)
        print(f"previous {target} saved as {backup}")
    shutil.copyfile(source, target)
    back = "" if name == "embedded" else " (back to the embedded default: `seqgan use-config embedded`)"
    print(f"{target} now holds {source}{back}")
    from seqgan.dvc_yaml import write_dvc_yaml

    dvc_yaml = target.with_name("dvc.yaml")
    changed = write_dvc_yaml(REPOSITORY, target, dvc_yaml)
    print(
        f"{dvc_yaml} {'regenerated' if changed else 'unchanged'} for it; run `snakemake -n` or "
        "`dvc status` to see what will be (re)built"
    )
