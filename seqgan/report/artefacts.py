"""Where the artefacts the tables and claims read live, which of them the params produce, and who made them.

The reproduced tables and the claims audit read only recorded artefacts. This module is the one
place that spells the path contract of those artefacts (README "Targets", the rules in
workflow/rules/), so the Snakemake rules can list exactly the files a table reads (they call the
same functions) and a renamed path breaks one function, not three modules.

A reported number says which run produced it by a short hash (``Params.section_hash``) of the
params keys declared for that run and the runs it was made from (:func:`seqgan.runs.lineage_keys`)
plus the git revision recorded in the artefact itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from seqgan.config import NO_ENTROPY_VARIANT, Params, lookup
from seqgan.runs import lineage_keys

Decoder = Literal["phase1", "phase2"]

# Paper datasets, recognised by the prefix of data.name (configs/: imagenet256, ffhq256, lsun_cat256, ...).
PAPER_DATASETS: tuple[tuple[str, str], ...] = (
    ("imagenet", "imagenet"),
    ("ffhq", "ffhq"),
    ("lsun_cat", "lsun_cat"),
    ("lsun_bedroom", "lsun_bedroom"),
    ("lsun_church", "lsun_church"),
)


def paper_dataset(params: Params) -> str | None:
    """The paper's dataset the params train on (``None`` for the embedded default or any other set)."""
    for prefix, name in PAPER_DATASETS:
        if params.data.name.startswith(prefix):
            return name
    return None


def variant_name(alpha: float) -> str:
    """``alpha<str(a)>``: the variant directory name (Python's str() of the float, as DVC prints it)."""
    return f"alpha{float(alpha)}"


@dataclass(frozen=True)
class ArtefactLayout:
    """Paths of the recorded artefacts under a results and a models directory."""

    results: Path
    models: Path

    def semantic_metrics(self) -> Path:
        return self.results / "metrics" / "semantic.json"

    def tokenizer_metrics(self, variant: str, seed: int) -> Path:
        return self.results / "metrics" / "tokenizer" / "phase1" / variant / f"seed{seed}.json"

    def phase2_metrics(self, seed: int) -> Path:
        return self.results / "metrics" / "tokenizer" / "phase2" / f"seed{seed}.json"

    def tokenizer_sidecar(self, variant: str, seed: int) -> Path:
        return self.models / "tokenizer" / "phase1" / variant / f"seed{seed}" / "tokenizer.json"

    def phase2_sidecar(self, seed: int) -> Path:
        return self.models / "tokenizer" / "phase2" / f"seed{seed}" / "tokenizer.json"

    def transformer_sidecar(self, objective: str, size: str, variant: str, seed: int) -> Path:
        return self.models / "transformer" / objective / size / variant / f"seed{seed}" / "model.json"

    def generation_metrics(self, objective: str, size: str, variant: str, decoder: Decoder, seed: int) -> Path:
        return self.results / "metrics" / "generation" / objective / size / variant / decoder / f"seed{seed}.json"


@dataclass(frozen=True)
class ProducedRuns:
    """What the params make: tokenizer variants, transformer objectives and sizes, seeds.

    ``why_not_*`` return the reason a run is absent (``None`` when the params produce it), so a
    table cell or a claim can say "not run" with its cause.
    """

    params: Params

    @property
    def alphas(self) -> tuple[float, ...]:
        return tuple(sorted(self.params.tokenizer.alphas))

    @property
    def variants(self) -> tuple[str, ...]:
        names = tuple(variant_name(a) for a in self.alphas)
        return names + (("control",) if self.params.tokenizer.control_no_perceptual else ())

    @property
    def no_entropy_variant(self) -> str | None:
        """The alpha-0 tokenizer trained without the entropy regulariser (claim 3), when the params make it."""
        return NO_ENTROPY_VARIANT if self.params.tokenizer.control_no_entropy else None

    @property
    def tokenizer_variants(self) -> tuple[str, ...]:
        """Every phase-1 tokenizer with metrics: the transformer variants plus the no-entropy control."""
        return self.variants + ((self.no_entropy_variant,) if self.no_entropy_variant else ())

    @property
    def phase2_source(self) -> str:
        return variant_name(self.params.tokenizer.phase2.from_alpha)

    @property
    def run_seed(self) -> int:
        return self.params.run.seed

    @property
    def experiment_seeds(self) -> tuple[int, ...]:
        return tuple(self.params.evaluation.experiment_seeds)

    @property
    def confirmatory_seeds(self) -> tuple[int, ...]:
        return tuple(self.params.evaluation.confirmatory_seeds)

    @property
    def alpha_ends(self) -> tuple[str, ...]:
        """Claim 2's confirmatory pair: the smallest and the largest alpha's variants (one with one alpha)."""
        return tuple(dict.fromkeys([variant_name(self.alphas[0]), variant_name(self.alphas[-1])]))

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        """The training seeds of a tokenizer variant and its transformers: every confirmatory seed for
        the two alpha ends, the experiment seeds for every other variant."""
        return self.confirmatory_seeds if variant in self.alpha_ends else self.experiment_seeds

    @property
    def sampling_seeds(self) -> tuple[int, ...]:
        return tuple(self.params.evaluation.sampling_seeds)

    @property
    def primary_size(self) -> str:
        """The size Fig. 2 and the claims use (the first of transformer.models)."""
        return self.params.transformer.models[0]

    def why_not_alpha(self, alpha: float) -> str | None:
        if float(alpha) in self.alphas:
            return None
        return f"alpha {float(alpha)} not in tokenizer.alphas {list(self.alphas)}"

    def why_not_transformer(self, objective: str, size: str) -> str | None:
        if objective not in self.params.transformer.objectives:
            return f"objective {objective} not in transformer.objectives {list(self.params.transformer.objectives)}"
        if size not in self.params.transformer.models:
            return f"size {size} not in transformer.models {list(self.params.transformer.models)}"
        return None

    def generation_files(
        self, layout: ArtefactLayout, objective: str, size: str, variant: str, decoder: Decoder
    ) -> tuple[Path, ...]:
        """One generation-metrics file per sampling seed (samples of the run.seed models)."""
        return tuple(layout.generation_metrics(objective, size, variant, decoder, s) for s in self.sampling_seeds)


@dataclass(frozen=True)
class RunIdentity:
    """Which run produced a number: params hash of its sections, and the recorded git revision."""

    kind: str
    params_hash: str
    sections: tuple[str, ...]
    git_revision: str

    def describe(self) -> str:
        return f"params hash {self.params_hash} ({self.kind}: {', '.join(self.sections)}), git {self.git_revision}"


def run_identity(params: Params, kind: str, records: list[dict[str, Any]]) -> RunIdentity:
    """``kind``: a key of :data:`seqgan.runs.LINEAGE`; the hash covers the declared keys of every run
    the reported number went through (seqgan/runs.py)."""
    sections = tuple(lineage_keys(kind, params.raw))
    revisions = sorted({rev for record in records for rev in git_revisions(record)})
    return RunIdentity(kind, params.section_hash(*sections), sections, ", ".join(revisions) or "not recorded")


def git_revisions(record: Any) -> list[str]:
    """Every ``git_revision`` recorded in an artefact (top level first, then nested provenance)."""
    found: list[str] = []
    if isinstance(record, dict):
        if isinstance(record.get("git_revision"), str):
            found.append(record["git_revision"])
        for key, value in record.items():
            if key != "git_revision":
                found += [r for r in git_revisions(value) if r not in found]
    elif isinstance(record, list):
        for value in record:
            found += [r for r in git_revisions(value) if r not in found]
    return found


class MissingArtefactError(FileNotFoundError):
    """A table or claim needs an artefact that is not there; the message names it and how to make it."""


def read_json(path: str | Path) -> dict[str, Any]:
    """A recorded JSON artefact; a missing file is an error that names the Snakemake target."""
    path = Path(path)
    if not path.is_file():
        raise MissingArtefactError(f"missing artefact {path}: build it first (snakemake {path} --cores all)")
    return json.loads(path.read_text())


def dotted(record: dict[str, Any], key_path: str, source: str | Path = "") -> Any:
    """Value at ``a.b.c`` in a JSON record; a missing key names the file and key."""
    try:
        return lookup(record, key_path)
    except KeyError:
        raise KeyError(f"{source or 'record'}: no key {key_path!r}") from None
