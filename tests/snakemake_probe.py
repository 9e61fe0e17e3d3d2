"""What the workflow sets up when Snakemake loads it, read through Snakemake's API in a subprocess
(the API keeps global state): the gpu limit, each rule's declared gpu and the shell prefix that
defines `seqgan` / `seqgan_train`. Used by tests/test_gpu_scheduling.py and test_paper_scale_dag.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings
from snakemake.shell import shell

resources = dict(r.split("=") for r in sys.argv[2:])
quiet = OutputSettings(quiet={Quietness.ALL, Quietness.PROGRESS, Quietness.RULES, Quietness.HOST})
with SnakemakeApi(quiet) as api:
    settings = ResourceSettings(cores=2, resources={k: int(v) for k, v in resources.items()})
    wf_api = api.workflow(resource_settings=settings, snakefile=Path(sys.argv[1]), workdir=Path.cwd())
    wf_api.dag(DAGSettings(targets=frozenset(["all"])))
    wf = wf_api._workflow
    limit = wf.global_resources.get("gpu")
    gpu = {r.name: getattr(r.resources.get("gpu"), "value", r.resources.get("gpu")) for r in wf.rules}
    print(json.dumps({"rules": sorted(r.name for r in wf.rules),
                      "limit": None if limit is None else getattr(limit, "value", limit),
                      "gpu": {k: v for k, v in gpu.items() if isinstance(v, int)},
                      "prefix": shell._process_prefix}))
"""


def probe(workdir: Path, *resources: str, env: Mapping[str, str] | None = None) -> dict:
    """``{"rules", "limit", "gpu", "prefix"}`` of the workflow loaded in ``workdir`` (its params.yaml), with
    ``resources`` given as on the command line (``gpu=1``)."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(ROOT / "Snakefile"), *resources],
        cwd=workdir,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def localrules() -> set[str]:
    """The rules of the Snakefile's ``localrules:`` directive (run by Snakemake itself, never
    submitted to a cluster). Read from the Snakefile's text: a dry run under a cluster executor
    prints them as plain ``rule X:`` blocks."""
    lines = (ROOT / "Snakefile").read_text().splitlines()
    start = lines.index("localrules:") + 1
    names: set[str] = set()
    for line in lines[start:]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        names.update(n.strip() for n in line.split(",") if n.strip())
    return names
