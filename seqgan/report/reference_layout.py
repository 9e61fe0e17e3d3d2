"""What a reference run directory (results/reference/) holds, and reading it back.

One place spells the file names, so `seqgan reference-run` (writes), `seqgan compare-reference`
and `seqgan readme-tables` (read) cannot drift apart. The directory is committed to git: it is
outside every Snakemake output and DVC out (see .gitignore and .dvcignore).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqgan.report.numbers import RunNumbers, numbers_from_json
from seqgan.report.timings import StageTiming, read_stages

DEFAULT_REFERENCE = Path("results") / "reference"


class MissingReferenceError(FileNotFoundError):
    """The reference directory lacks a file; the message says how to make or get it."""


@dataclass(frozen=True)
class ReferenceLayout:
    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def numbers_json(self) -> Path:
        return self.root / "numbers.json"

    @property
    def timings_csv(self) -> Path:
        return self.root / "timings.csv"

    @property
    def stages_csv(self) -> Path:
        return self.root / "stages.csv"

    @property
    def claims_md(self) -> Path:
        return self.root / "claims.md"

    @property
    def fig2_csv(self) -> Path:
        return self.root / "fig2_val_loss.csv"

    @property
    def semantic_sweep_csv(self) -> Path:
        """benchmarks/semantic_recipe.py sweep --out: the learning-rate sweep of the semantic network."""
        return self.root / "semantic_sweep.csv"

    @property
    def semantic_seeds_csv(self) -> Path:
        """benchmarks/semantic_recipe.py seeds --out: the chosen recipe over seeds and thread counts."""
        return self.root / "semantic_seeds.csv"

    @property
    def tokenizer_recipe_csv(self) -> Path:
        """benchmarks/tokenizer_recipe.py --out: trials of the phase-1 tokenizer recipe."""
        return self.root / "tokenizer_recipe.csv"

    @property
    def threads2_summary(self) -> Path:
        """compare-reference's JSON summary of the same commit run with two threads per job."""
        return self.root / "threads2" / "compare_reference.json"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    def exists(self) -> bool:
        return self.run_json.is_file()

    def _need(self, path: Path) -> Path:
        if not path.is_file():
            raise MissingReferenceError(
                f"no {path.name} in the reference directory {self.root} ({path} is missing): make a reference "
                f"with `seqgan reference-run --out {self.root}` in a fresh clone, or check out the committed one "
                f"(git checkout -- {self.root})"
            )
        return path

    def run_info(self) -> dict[str, Any]:
        return json.loads(self._need(self.run_json).read_text())

    def numbers(self) -> RunNumbers:
        path = self._need(self.numbers_json)
        return numbers_from_json(path.read_text(), str(path))

    def stages(self) -> list[StageTiming]:
        return read_stages(self._need(self.stages_csv))
