"""`seqgan dvc-yaml`: dvc.yaml generated from the Snakemake DAG and the run declarations.

dvc.yaml is a thin layer over the Snakemake rules: each stage runs
``snakemake --cores all --allowed-rules <rule> -- <targets>`` and tells DVC what the stage's jobs
read and write, so DVC alone decides what is stale. Hand-kept, it would follow one params.yaml
only; generated, it follows any. Where each part comes from:

* the jobs, their inputs, outputs and wildcards: Snakemake's job DAG of the default target
  (``rule all``) for the params file, built in a subprocess (Snakemake keeps global state) in a
  temporary working directory holding the params file as params.yaml (the Snakefile reads
  params.yaml from its working directory and refuses anything else);
* ``params:``: :func:`seqgan.runs.run_keys` of each job (the keys the rules pass as ``params:``);
* ``deps:``: the jobs' inputs, every file listed (code inputs are :func:`seqgan.runs.code_files`,
  through the rules' ``code`` input);
* outs, metrics, plots: the jobs' outputs plus what their commands write beside them
  (:data:`WRITTEN_BESIDE`).

Stage names (docs/dvc.md): one stage group per rule, named after it; a sweep is a ``matrix:``
over the rule's :data:`AXES` (``train_ar@base-0.5-0``), written as the params list it equals
(``${tokenizer.alphas}``); a job fixed to a value outside the sweep -- a tokenizer variant other
than an alpha (``control``, ``noentropy``), the phase-2 tokenizer or decoder, a paper table, a
transformer size other than the one sampled (imagenet's ``large``) -- gets a group named
``<rule>_<value>`` (``train_ar_control@base-0``, ``sample_phase2@ar-0``,
``paper_table_table2_reconstruction``, ``sample_large@ar-1.0-0``). Where the jobs are not every
combination of the axis values (imagenet trains the ``large`` transformer for one alpha only), the
group is a ``foreach:`` over its items, keyed as a matrix names them (``train_ar@large-1.0-0``).
A params entry that depends on an item is interpolated (``transformer.sizes.${item.size}``: DVC
fills ``${item...}`` inside ``params:`` entries); where the items' key lists differ otherwise
(``sample`` over ``ar`` and ``nar``), the entries are the union of the items' keys, since DVC cannot
vary the number of entries per item.

Everything that is not a matrix axis is written out (``seed0``, ``alpha1.0``, ``base``): the file
holds the stages of the params it was generated for, and ``seqgan dvc-yaml`` (run by
``seqgan use-config``) regenerates it after a change of which runs exist. Only ``data/<data.name>``
stays interpolated, as every path of the dataset starts with it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqgan.artefacts.files import atomic_write_text
from seqgan.runs import run_keys

__all__ = ["AXES", "REPOSITORY", "build_dag", "generate_dvc_yaml", "render_dvc_yaml", "snakemake_dag", "write_dvc_yaml"]

REPOSITORY = Path(__file__).resolve().parents[1]  # holds the Snakefile

# Read by the rules as source inputs (code files, schemas): linked into the temporary working
# directory the DAG is built in, so relative input paths resolve there as in the repository.
SOURCE_DIRS = ("seqgan", "workflow")

# The sweep axes of each rule's stages, in the order of DVC's stage names (`train_ar@<size>-<alpha>-<seed>`).
# `alpha` is the value of a tokenizer variant `alpha<a>`; a rule's other wildcards are fixed per
# stage (`sample`: size = transformer.models[0]) or become several targets of one stage
# (`prepare_data`, `encode_tokens`: split).
AXES: dict[str, tuple[str, ...]] = {
    "fid_reference": ("split",),
    "tokenizer_phase1": ("alpha", "seed"),
    "tokenizer_phase2": ("seed",),
    "eval_tokenizer": ("alpha", "seed"),
    "encode_tokens": ("alpha", "seed"),
    "train_ar": ("size", "alpha", "seed"),
    "train_nar": ("size", "alpha", "seed"),
    "sample": ("objective", "alpha", "seed"),
    "eval_samples": ("objective", "alpha", "seed"),
    "sample_grid": ("objective", "decoder"),
}
# Wildcards whose values are several targets of one stage where they are no axis (`prepare_data`:
# both splits; `encode_tokens@0.5-0`: the train and val tokens of one tokenizer).
FOLDED = frozenset({"split"})
# Rules whose `seed` wildcard is a sampling seed (evaluation.sampling_seeds); every other `seed` is
# a training seed (evaluation.experiment_seeds, run.seed). A path's seed is a stage's `${item.seed}`
# only when both are seeds of the same kind.
SAMPLING_SEED_RULES = frozenset({"sample", "eval_samples"})
# Wildcards whose value names a stage group `<rule>_<value>` when the wildcard is no axis of the rule,
# except for their default value: a tokenizer variant other than an alpha of the sweep, the phase-2
# tokenizer or decoder, a paper table, a transformer size other than transformer.models[0] where
# only that one is swept (`sample_large`: imagenet samples its large model for Table 1).
NAME_DEFAULTS = {
    "variant": lambda raw: None,
    "phase": lambda raw: "phase1",
    "decoder": lambda raw: "phase1",
    "size": lambda raw: str(raw["transformer"]["models"][0]),
    "table": lambda raw: None,
}
# A group named after a tokenizer (variant, phase, decoder) has no alpha axis: the name fixes it.
TOKENIZER_WILDCARDS = frozenset({"variant", "phase", "decoder"})
# The params.yaml lists a matrix axis is written as, when its values are that list's.
AXIS_LISTS = {
    "alpha": "tokenizer.alphas",
    "size": "transformer.models",
    "objective": "transformer.objectives",
    "seed:experiment": "evaluation.experiment_seeds",
    "seed:sampling": "evaluation.sampling_seeds",
}

# What commands write beside their declared outputs, so that a run-cache restore brings back every
# file a later rule or person reads:
# * the directory of an output named `curve` is a DVCLive log directory (seqgan/train/live.py):
#   DVCLive's summary `metrics.json` (a DVC metric) and `plots/`, and the step log `train.csv`
#   (a DVC plot) when it is not the declared curve itself;
# * WHOLE_FOLDER rules write a folder whose manifest is their declared output (a sample set: the
#   images, tokens and labels beside it are read by eval_samples, sample_grid, fig1): the folder is
#   the out.
WRITTEN_BESIDE = {"curve": ("plots", "metrics.json", "train.csv")}
WHOLE_FOLDER = {"sample": "manifest"}
METRICS_DIR = "results/metrics/"
# Plot axes of the curves: a declared step log plots every column; a validation curve plots val_loss,
# the step log beside it the training loss.
PLOT_STEP_LOG = {"x": "step"}
PLOT_VALIDATION = {"x": "step", "y": "val_loss"}
PLOT_BESIDE = {"x": "step", "y": "loss"}

# `artifacts:` (DVC model registry): the `weights` outputs of these rules, one entry each when they
# run; the path is the file, or the directory holding all of them.
ARTIFACTS = (
    (
        "semantic-net",
        ("train_semantic",),
        "embedded semantic classifier (perceptual backbone and FID features of the embedded default)",
    ),
    (
        "tokenizers-phase1",
        ("tokenizer_phase1",),
        "phase-1 SeQ-GAN tokenizers, one per tokenizer variant and experiment seed",
    ),
    (
        "tokenizer-phase2",
        ("tokenizer_phase2",),
        "phase-2 tokenizer (attention decoder on the frozen phase-1 encoder and codebook)",
    ),
    (
        "transformers",
        ("train_ar", "train_nar"),
        "AR / NAR transformers per objective, size, tokenizer variant and seed",
    ),
)

HEADER = """\
# GENERATED by `seqgan dvc-yaml` (also run by `seqgan use-config`) from the Snakemake DAG of the
# default target for the params in use (params.yaml with run.name {run_name}) and the run
# declarations in seqgan/runs.py. Do not edit by hand: change the rules or seqgan/runs.py and regenerate;
# tests/test_dvc_yaml.py fails when this file differs from what `seqgan dvc-yaml` writes.
#
# - Stages of one rule each; a stage's cmd asks Snakemake for its targets with only that rule
#   allowed, so DVC alone decides what upstream is stale.
# - Stage name = the rule. Sweeps are `matrix:` stages over the params lists Snakemake expands
#   (`tokenizer_phase1@0.5-0`, `train_ar@base-0.5-0`; floats print with Python's str() in both
#   tools), or `foreach:` the items where not every combination is a job; a job fixed to a value
#   outside the sweep is `<rule>_<value>` (`train_ar_control@base-0`, `sample_phase2@ar-0`,
#   `paper_table_table2_reconstruction`).
# - params: the keys seqgan/runs.py declares for the rule (the rule's `params:`, so both tools
#   rerun on the same changes); a key that depends on a matrix value is interpolated
#   (`transformer.sizes.${{item.size}}`). deps: every input file of the stage's jobs, code files
#   included. outs/metrics/plots: the jobs' outputs plus what their commands write beside them
#   (DVCLive's metrics.json and plots/ in a run's curve directory, a sample folder as a whole),
#   all cached, so earlier settings come back from the run cache without retraining.
# - Values that are no matrix axis are written out (run.seed, transformer.models[0], ...): after
#   changing which runs exist (alphas, seeds, objectives, models, controls, data, backbone), run
#   `seqgan dvc-yaml` before `dvc repro`.
"""


# --------------------------------------------------------------------------------------------------
# Snakemake's DAG (built in a subprocess: `python -m seqgan.dvc_yaml --dump-dag ROOT WORKDIR OUT`)
# --------------------------------------------------------------------------------------------------


def prepare_workdir(root: Path, params_file: Path, workdir: Path) -> Path:
    """A working directory for the Snakefile of ``root`` with ``params_file`` as its params.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "params.yaml").write_bytes(Path(params_file).read_bytes())
    for name in SOURCE_DIRS:
        link = workdir / name
        if not link.exists():
            link.symlink_to(Path(root).resolve() / name, target_is_directory=True)
    return workdir


def build_dag(root: Path, workdir: Path) -> dict[str, Any]:
    """The job DAG of ``rule all`` (in-process; Snakemake keeps global state: once per process).

    Returns ``{"rules": [rule names, definition order], "patterns": {rule: [output patterns]},
    "input_patterns": {rule: {input name: [pattern, or None for an input function]}},
    "jobs": [{"rule", "wildcards", "output", "output_names", "input", "input_names"}]}``, paths
    relative to the working directory (or to ``root`` for its files), jobs in a fixed order.
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    root, workdir = Path(root).resolve(), Path(workdir).resolve()

    def rel(path: str) -> str:
        """Relative to the working directory, or to ``root`` for its files (the rules may name
        them by absolute paths or by relative paths from the working directory)."""
        p = Path(os.path.normpath(workdir / path))
        for base in (workdir, root):
            if p.is_relative_to(base):
                return p.relative_to(base).as_posix()
        return p.as_posix()

    def names(namedlist) -> list[str | None]:
        out: list[str | None] = [None] * len(namedlist)
        for name, (start, end) in namedlist._names.items():
            for i in range(start, start + 1 if end is None else end):
                out[i] = name
        return out

    output_settings = OutputSettings(quiet={Quietness.ALL, Quietness.PROGRESS, Quietness.RULES, Quietness.HOST})
    with SnakemakeApi(output_settings) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=root / "Snakefile", workdir=workdir
        )
        workflow_api.dag(DAGSettings(targets=frozenset(["all"]), forceall=True))
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        rules = [r.name for r in workflow.rules]
        patterns = {r.name: [str(f) for f in r.output] for r in workflow.rules}
        input_patterns = {}
        for r in workflow.rules:
            by_name: dict[str, list[str | None]] = {}
            for name, item in zip(names(r.input), r.input, strict=True):
                if name is not None:
                    by_name.setdefault(name, []).append(None if callable(item) else str(item))
            input_patterns[r.name] = by_name
        jobs = []
        for job in workflow.dag.jobs:
            inputs: dict[str, str | None] = {}
            for name, f in zip(names(job.input), job.input, strict=True):
                inputs.setdefault(rel(str(f)), name)
            jobs.append(
                {
                    "rule": job.rule.name,
                    "wildcards": {k: str(v) for k, v in job.wildcards_dict.items()},
                    "output": [rel(str(f)) for f in job.output],
                    "output_names": names(job.output),
                    "input": list(inputs),
                    "input_names": list(inputs.values()),
                }
            )
    order = {r: i for i, r in enumerate(rules)}
    jobs.sort(key=lambda j: (order[j["rule"]], j["output"], sorted(j["wildcards"].items())))
    return {"rules": rules, "patterns": patterns, "input_patterns": input_patterns, "jobs": jobs}


def snakemake_dag(root: Path, params_file: Path, *, timeout: float = 600) -> dict[str, Any]:
    """:func:`build_dag` for ``params_file``, in a subprocess and a temporary working directory."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="seqgan-dvc-yaml-") as tmp:
        workdir = prepare_workdir(root, Path(params_file), Path(tmp) / "work")
        out = Path(tmp) / "dag.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        result = subprocess.run(
            [sys.executable, "-m", "seqgan.dvc_yaml", "--dump-dag", str(root), str(workdir), str(out)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"building Snakemake's DAG for {params_file} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return json.loads(out.read_text())


# --------------------------------------------------------------------------------------------------
# Stage groups: one per rule and name value, a matrix over the rule's axes
# --------------------------------------------------------------------------------------------------


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    output: list[str]
    output_names: list[str | None]
    input: list[str]
    input_names: list[str | None]

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Job:
        return cls(**{k: fields[k] for k in cls.__dataclass_fields__})

    @property
    def facts(self) -> dict[str, str]:
        """The wildcards, with a tokenizer variant `alpha<a>` also as `alpha` and eval_tokenizer's
        `tokenizer` (`phase1/<variant>/seed<s>` or `phase2/seed<s>`) split into variant / seed / phase."""
        facts = dict(self.wildcards)
        tokenizer = facts.pop("tokenizer", None)
        if tokenizer is not None:
            match = re.fullmatch(r"phase1/([^/]+)/seed([^/]+)", tokenizer)
            phase2 = re.fullmatch(r"phase2/seed([^/]+)", tokenizer)
            if match:
                facts.update(phase="phase1", variant=match[1], seed=match[2])
            elif phase2:
                facts.update(phase="phase2", seed=phase2[1])
            else:
                facts["phase"] = tokenizer
        if facts.get("variant", "").startswith("alpha"):
            facts["alpha"] = facts["variant"][len("alpha") :]
        return facts


@dataclass
class Group:
    """The jobs of one stage definition: ``name`` (plain or matrix), ``axes`` with their values."""

    rule: str
    name: str
    axes: list[str]
    values: dict[str, list[str]] = field(default_factory=dict)
    items: dict[tuple[str, ...], list[Job]] = field(default_factory=dict)  # axis values -> jobs

    def item(self, key: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.axes, key, strict=True))


def _seed_kind(rule: str) -> str:
    return "sampling" if rule in SAMPLING_SEED_RULES else "experiment"


def _group_name(rule: str, facts: Mapping[str, str], axes: Sequence[str], raw: Mapping[str, Any]) -> tuple[str, bool]:
    """(`<rule>[_<value>...]`, whether a value fixes the tokenizer)."""
    parts, tokenizer = [], False
    for wildcard, default in NAME_DEFAULTS.items():
        value = facts.get(wildcard)
        if value is None or value == default(raw) or wildcard in axes:
            continue
        if wildcard == "variant" and "alpha" in facts:
            continue  # an alpha of the sweep, not a variant outside it
        parts.append(value)
        tokenizer |= wildcard in TOKENIZER_WILDCARDS
    return "_".join([rule, *parts]), tokenizer


def _sort_values(values: Iterable[str]) -> list[str]:
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return sorted(set(values), key=key)


def _groups(dag: Mapping[str, Any], raw: Mapping[str, Any]) -> list[Group]:
    jobs = [Job.of(j) for j in dag["jobs"] if j["rule"] != "all"]
    groups: dict[tuple[str, str], Group] = {}
    for job in jobs:
        facts = job.facts
        rule_axes = AXES.get(job.rule, ())
        name, tokenizer = _group_name(job.rule, facts, rule_axes, raw)
        axes = [a for a in rule_axes if a in facts and not (tokenizer and a == "alpha")]
        group = groups.setdefault((job.rule, name), Group(job.rule, name, axes))
        if group.axes != axes:
            raise ValueError(f"stage {name}: jobs of rule {job.rule} differ in their axes ({group.axes} vs {axes})")
        group.items.setdefault(tuple(facts[a] for a in axes), []).append(job)
    for group in groups.values():
        for key, jobs_of_item in group.items.items():
            varying = {w for job in jobs_of_item for w, v in job.wildcards.items() if v != jobs_of_item[0].wildcards[w]}
            if varying - FOLDED:
                raise ValueError(
                    f"stage {group.name}{'@' + '-'.join(key) if key else ''}: {len(jobs_of_item)} jobs of rule "
                    f"{group.rule} differ in {sorted(varying - FOLDED)}, which is no axis ({group.axes}), no name "
                    "value and not several targets of one stage: extend AXES / NAME_DEFAULTS in seqgan/dvc_yaml.py"
                )
    order = {r: i for i, r in enumerate(dag["rules"])}
    result = sorted(groups.values(), key=lambda g: (order[g.rule], g.name != g.rule, g.name))
    for group in result:
        for i, axis in enumerate(group.axes):
            group.values[axis] = _sort_values(key[i] for key in group.items)
        for jobs_of_item in group.items.values():
            jobs_of_item.sort(key=lambda j: sorted(j.wildcards.items()))
    return result


def _axis_list(group: Group, axis: str, raw: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(params list the axis values are, or None; the values in that list's order)."""
    values = group.values[axis]
    name = AXIS_LISTS.get(f"seed:{_seed_kind(group.rule)}" if axis == "seed" else axis)
    if name is not None:
        section, key = name.split(".")
        listed = [str(v) for v in raw[section][key]]
        if sorted(listed) == sorted(values) and len(set(listed)) == len(listed):
            return name, listed
    return None, values


# --------------------------------------------------------------------------------------------------
# Paths as templates of a stage's items (`${item.<axis>}`)
# --------------------------------------------------------------------------------------------------

_WILDCARD = re.compile(r"\{(\w+)(?:,[^{}]*)?\}")


class Templater:
    """Writes the paths of a group's items as one template each, checked against every item.

    A path slot (the k-th output or input of the items' jobs, one path per item) is written from
    the pattern that made it: the rule's own output or input pattern (its wildcards are the
    stage's), else the output pattern of the job producing it upstream; each wildcard is the
    item's axis (`${item.seed}`) where it is that in every item, else its one value."""

    def __init__(self, group: Group, keys: list[tuple[str, ...]], dag: Mapping[str, Any], raw: Mapping[str, Any]):
        self.group, self.keys, self.raw = group, keys, raw
        self.items = [group.item(k) for k in keys]
        self.patterns = dag["patterns"]
        self.input_patterns = dag["input_patterns"]
        self.producer: dict[str, tuple[Job, int]] = {}
        for j in dag["jobs"]:
            job = Job.of(j)
            for index, path in enumerate(job.output):
                self.producer[path] = (job, index)
        self.data_dir = f"data/{raw['data']['name']}/"

    def _value(self, rule: str, wildcard: str, values: list[str]) -> str:
        """One wildcard of rule ``rule``'s pattern, its value per item."""
        axes = self.group.axes
        if wildcard == "tokenizer" and all(re.fullmatch(r"phase1/[^/]+/seed[^/]+", v) for v in values):
            parts = [re.fullmatch(r"phase1/([^/]+)/seed([^/]+)", v).groups() for v in values]
            return (
                f"phase1/{self._value(rule, 'variant', [p[0] for p in parts])}"
                f"/seed{self._value(rule, 'seed', [p[1] for p in parts])}"
            )
        if wildcard == "tokenizer" and all(re.fullmatch(r"phase2/seed[^/]+", v) for v in values):
            return f"phase2/seed{self._value(rule, 'seed', [v.split('seed', 1)[1] for v in values])}"
        if (
            wildcard == "variant"
            and "alpha" in axes
            and all(v == f"alpha{item['alpha']}" for v, item in zip(values, self.items, strict=True))
        ):
            return "alpha${item.alpha}"
        same_kind = wildcard != "seed" or _seed_kind(rule) == _seed_kind(self.group.rule)
        pairs = zip(values, self.items, strict=True)
        if wildcard in axes and same_kind and all(v == item[wildcard] for v, item in pairs):
            return f"${{item.{wildcard}}}"
        if len(set(values)) != 1:
            raise ValueError(
                f"wildcard {wildcard} of rule {rule} varies over the items ({sorted(set(values))}) "
                f"but is none of the axes {axes}"
            )
        return values[0]

    def _fill(self, rule: str, pattern: str, wildcards: list[Mapping[str, str]]) -> str:
        return _WILDCARD.sub(lambda m: self._value(rule, m[1], [w[m[1]] for w in wildcards]), pattern)

    def template(self, paths: list[str], jobs: list[Job], own: str | None, *, dep: bool = False) -> str:
        """The template of one slot: ``paths`` and ``jobs`` per item, ``own``: the stage rule's
        pattern of the slot (None for an input function). A ``dep`` on the manifest of a
        WHOLE_FOLDER output is the folder: the out holding it, and what the reader reads."""
        produced = [self.producer.get(p) for p in paths]
        candidates = []
        if own is not None:
            candidates.append(lambda: self._fill(self.group.rule, own, [j.wildcards for j in jobs]))
        if all(p is not None for p in produced) and len({(j.rule, i) for j, i in produced}) == 1:
            rule, index = produced[0][0].rule, produced[0][1]
            candidates.append(lambda: self._fill(rule, self.patterns[rule][index], [j.wildcards for j, _ in produced]))
        if len(set(paths)) == 1:
            candidates.append(lambda: paths[0])
        problems = []
        for candidate in candidates:
            try:
                text = candidate()
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if text.startswith(self.data_dir):
                text = "data/${data.name}/" + text[len(self.data_dir) :]
            rendered = [self.render(text, item) for item in self.items]
            if rendered != paths:
                problems.append(f"{text} gives {rendered}")
                continue
            if dep and produced[0] is not None:
                job, index = produced[0]
                name = job.output_names[index]
                if name is not None and WHOLE_FOLDER.get(job.rule) == name:
                    text = text.rsplit("/", 1)[0]
            return text
        raise ValueError(
            f"stage {self.group.name}: no template gives its items' paths {paths}: "
            + ("; ".join(problems) or "no common pattern")
        )

    def render(self, text: str, item: Mapping[str, str]) -> str:
        text = text.replace("${data.name}", str(self.raw["data"]["name"]))
        for axis, value in item.items():
            text = text.replace(f"${{item.{axis}}}", value)
        return text

    def outputs(self) -> list[tuple[str, str | None]]:
        """(template, output name) per output slot."""
        per_item = [[(job, i) for job in self.group.items[k] for i in range(len(job.output))] for k in self.keys]
        self._aligned(per_item)
        result = []
        for slot in zip(*per_item, strict=True):
            jobs = [job for job, _ in slot]
            index = slot[0][1]
            own = self.patterns[self.group.rule][index]
            result.append((self.template([j.output[i] for j, i in slot], jobs, own), jobs[0].output_names[index]))
        return result

    def inputs(self) -> list[str]:
        """Templates of the input slots, a WHOLE_FOLDER manifest as its folder."""
        per_item = [[(job, i) for job in self.group.items[k] for i in range(len(job.input))] for k in self.keys]
        self._aligned(per_item)
        result = []
        for slot in zip(*per_item, strict=True):
            jobs = [job for job, _ in slot]
            job, index = slot[0]
            result.append(self.template([j.input[i] for j, i in slot], jobs, self._input_pattern(job, index), dep=True))
        return result

    def _input_pattern(self, job: Job, index: int) -> str | None:
        """The rule's pattern of a job's input (None where the rule gives it by a function)."""
        name = job.input_names[index]
        declared = self.input_patterns.get(job.rule, {}).get(name or "", [])
        same_name = [i for i, n in enumerate(job.input_names) if n == name]
        if name is None or len(declared) != len(same_name):
            return None
        return declared[same_name.index(index)]

    def _aligned(self, per_item: list[list[Any]]) -> None:
        if len({len(slots) for slots in per_item}) != 1:
            raise ValueError(
                f"stage {self.group.name}: its items' jobs differ in their number of files "
                f"({[len(s) for s in per_item]})"
            )


def _params(group: Group, keys: list[tuple[str, ...]], raw: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The stage's params entries (a key holding an item's axis value as `${item.<axis>}`) and
    whether they are a union over the items (an item then also lists keys of another item)."""
    items = [group.item(k) for k in keys]
    per_item = [
        list(dict.fromkeys(key for job in group.items[k] for key in run_keys(job.rule, raw, job.wildcards)))
        for k in keys
    ]

    def render(entry: str, item: Mapping[str, str]) -> str:
        for axis, value in item.items():
            entry = entry.replace(f"${{item.{axis}}}", value)
        return entry

    entries: list[str] = []
    for item, item_keys in zip(items, per_item, strict=True):
        for key in item_keys:
            if any(render(e, item) == key for e in entries):
                continue
            parts = key.split(".")
            for axis, value in item.items():
                if "." not in value:
                    parts = [f"${{item.{axis}}}" if p == value else p for p in parts]
            templated = ".".join(parts)
            pairs = zip(items, per_item, strict=True)
            valid = templated != key and all(render(templated, it) in ks for it, ks in pairs)
            entries.append(templated if valid else key)
    union = any({render(e, it) for e in entries} != set(ks) for it, ks in zip(items, per_item, strict=True))
    return entries, union


def _target_index(dag: Mapping[str, Any]) -> dict[str, int]:
    """Per rule, the first output that a job (or `rule all`) reads: the stage's target."""
    consumed = {f for j in dag["jobs"] for f in j["input"]}
    index: dict[str, int] = {}
    for j in dag["jobs"]:
        read = [i for i, f in enumerate(j["output"]) if f in consumed]
        if read:
            index[j["rule"]] = min(index.get(j["rule"], read[0]), read[0])
    return index


# --------------------------------------------------------------------------------------------------
# dvc.yaml
# --------------------------------------------------------------------------------------------------


def _stage(group: Group, dag: Mapping[str, Any], raw: Mapping[str, Any], target_index: int) -> dict[str, Any]:
    matrix: dict[str, Any] = {}
    ordered: list[list[str]] = []
    for axis in group.axes:
        listed, values = _axis_list(group, axis, raw)
        matrix[axis] = f"${{{listed}}}" if listed else values
        ordered.append(values)
    keys = [key for key in itertools.product(*ordered) if key in group.items]
    if len(keys) != len(group.items):
        raise AssertionError(f"stage {group.name}: axis values outside the lists {ordered}")
    t = Templater(group, keys, dag, raw)
    named_outputs = t.outputs()
    outputs = [path for path, _ in named_outputs]
    per_job = len(outputs) // len(group.items[keys[0]])
    targets = outputs[target_index::per_job]
    deps = [d for d in dict.fromkeys(t.inputs()) if d not in set(outputs)]
    params, union = _params(group, keys, raw)

    outs: list[str] = []
    metrics: list[str] = []
    plots: list[dict[str, Any]] = []
    extra_outs: list[str] = []
    extra_metrics: list[str] = []
    extra_plots: list[dict[str, Any]] = []
    for path, name in named_outputs:
        if name == "curve":
            directory, file = path.rsplit("/", 1)
            plots.append({path: PLOT_STEP_LOG if file == "train.csv" else PLOT_VALIDATION})
            for beside in WRITTEN_BESIDE["curve"]:
                extra = f"{directory}/{beside}"
                if beside == "plots":
                    extra_outs.append(extra)
                elif beside == "metrics.json":
                    extra_metrics.append(extra)
                elif extra != path:
                    extra_plots.append({extra: PLOT_BESIDE})
        elif name is not None and WHOLE_FOLDER.get(group.rule) == name:
            outs.append(path.rsplit("/", 1)[0])
        elif path.startswith(METRICS_DIR):
            metrics.append(path)
        else:
            outs.append(path)

    body: dict[str, Any] = {"cmd": " ".join(["snakemake --cores all --allowed-rules", group.rule, "--", *targets])}
    if deps:
        body["deps"] = deps
    if params:
        body["params"] = params
    for section, entries in (
        ("outs", outs + extra_outs),
        ("metrics", metrics + extra_metrics),
        ("plots", plots + extra_plots),
    ):
        if entries:
            body[section] = entries
    if not group.axes:
        stage = body
    elif len(keys) == len(list(itertools.product(*ordered))):
        stage = {"matrix": matrix, **body}
    else:
        # Not every combination of the axis values is a job (imagenet: the large transformer for one
        # alpha only): the items one by one, named as a matrix would name them.
        stage = {"foreach": {"-".join(key): group.item(key) for key in keys}, "do": body}
    stage["_union_params"] = union  # a comment only, taken out before writing
    return stage


def _artifacts(dag: Mapping[str, Any]) -> dict[str, Any]:
    artifacts = {}
    for name, rules, desc in ARTIFACTS:
        weights = sorted(
            f
            for j in dag["jobs"]
            if j["rule"] in rules
            for f, n in zip(j["output"], j["output_names"], strict=True)
            if n == "weights"
        )
        if not weights:
            continue
        path = weights[0] if len(weights) == 1 else os.path.commonpath(weights)
        artifacts[name] = {"path": path, "type": "model", "desc": desc}
    return artifacts


def render_dvc_yaml(dag: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """dvc.yaml text for a DAG from :func:`build_dag` and the params it was built for."""
    targets = _target_index(dag)
    stages = {g.name: _stage(g, dag, raw, targets.get(g.rule, 0)) for g in _groups(dag, raw)}
    artifacts = _artifacts(dag)

    lines = [HEADER.format(run_name=raw["run"]["name"]), "stages:"]
    for name, stage in stages.items():
        lines.append(f"  {name}:")
        union = stage.pop("_union_params")
        body, indent = stage, "    "
        if "matrix" in stage:
            lines.append("    matrix:")
            lines += [f"      {axis}: {_flow(values)}" for axis, values in stage["matrix"].items()]
            body = {k: v for k, v in stage.items() if k != "matrix"}
        elif "foreach" in stage:
            lines.append("    # not every combination of the axis values is a job: the items one by one, named")
            lines.append("    # as a matrix would name them")
            lines.append("    foreach:")
            for key, item in stage["foreach"].items():
                lines.append(f"      {_scalar(key)}:")
                lines += [f"        {axis}: {_value(v)}" for axis, v in item.items()]
            lines.append("    do:")
            body, indent = stage["do"], "      "
        lines += _body(body, indent, union)
        lines.append("")
    if artifacts:
        lines.append("artifacts:")
        for name, spec in artifacts.items():
            lines.append(f"  {name}:")
            lines += [f"    {k}: {_scalar(v)}" for k, v in spec.items()]
    text = "\n".join(lines).rstrip("\n") + "\n"

    expected = {"stages": stages, **({"artifacts": artifacts} if artifacts else {})}
    if _as_text(yaml.safe_load(text)) != _as_text(expected):
        raise AssertionError("seqgan.dvc_yaml wrote YAML that does not read back as the stages it generated")
    return text


def _body(stage: Mapping[str, Any], indent: str, union: bool) -> list[str]:
    lines = []
    for section, value in stage.items():
        if section == "cmd":
            head, targets = value.split(" -- ", 1)
            if len(f"{indent}cmd: {value}") <= 110:
                lines.append(f"{indent}cmd: {value}")
            else:
                lines += [f"{indent}cmd: >-", f"{indent}  {head} --", *[f"{indent}  {t}" for t in targets.split(" ")]]
            continue
        if section == "params" and union:
            lines.append(f"{indent}# one list for all items (DVC cannot vary its length per item): the union of")
            lines.append(f"{indent}# the items' keys, so an item also reruns when a key of another item changes")
        lines.append(f"{indent}{section}:")
        for entry in value:
            if isinstance(entry, dict):
                ((path, spec),) = entry.items()
                lines.append(f"{indent}- {_scalar(path)}:")
                lines += [f"{indent}    {k}: {_scalar(v)}" for k, v in spec.items()]
            else:
                lines.append(f"{indent}- {_scalar(entry)}")
    return lines


def _as_text(data: Any) -> Any:
    """``data`` with every scalar as its text (a matrix value 1.0 is the item text "1.0")."""
    if isinstance(data, dict):
        return {str(k): _as_text(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_as_text(v) for v in data]
    return str(data)


_PLAIN = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_./${}\[\]@+=(),' -]*")


def _scalar(value: Any) -> str:
    """A string as a YAML scalar that reads back as that string."""
    text = str(value)
    if (
        isinstance(value, str)
        and _PLAIN.fullmatch(text)
        and not text.endswith(" ")
        and ": " not in text
        and " #" not in text
        and yaml.safe_load(text) == text
    ):
        return text
    if isinstance(value, str):
        return json.dumps(value)
    return text


def _value(value: str) -> str:
    """A matrix / foreach value: plain where YAML reads it as something printing as ``value``
    (`1.0`, `0`: DVC prints `${item.alpha}` with Python's str()), else a string."""
    loaded = yaml.safe_load(value) if _PLAIN.fullmatch(value) else None
    if isinstance(loaded, (str, int, float)) and not isinstance(loaded, bool) and str(loaded) == value:
        return value
    return json.dumps(value)


def _flow(values: str | list[str]) -> str:
    if isinstance(values, str):
        return values
    return "[" + ", ".join(_value(v) for v in values) + "]"


def generate_dvc_yaml(root: Path, params_file: Path) -> str:
    """dvc.yaml for ``params_file``: Snakemake's DAG of ``rule all`` (the Snakefile of ``root``)
    and seqgan/runs.py's declarations."""
    params_file = Path(params_file)
    raw = yaml.safe_load(params_file.read_text())
    return render_dvc_yaml(snakemake_dag(root, params_file), raw)


def write_dvc_yaml(root: Path, params_file: Path, out: Path) -> bool:
    """Write :func:`generate_dvc_yaml` to ``out`` (atomically); True when its content changed."""
    text = generate_dvc_yaml(root, params_file)
    out = Path(out)
    if out.is_file() and out.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(out, text)
    return True


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "--dump-dag":
        raise SystemExit("usage: python -m seqgan.dvc_yaml --dump-dag ROOT WORKDIR OUT (internal: `seqgan dvc-yaml`)")
    _root, _workdir, _out = (Path(a) for a in sys.argv[2:])
    _out.write_text(json.dumps(build_dag(_root, _workdir), indent=1))
