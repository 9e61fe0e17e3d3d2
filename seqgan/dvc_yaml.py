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

Stage names (README, "DVC"): one stage group per rule, named after it; a sweep is a ``matrix:``
over the rule's :data:`AXES` (``train_ar@base-0.5-0``), written as the params list it equals
(``${tokenizer.alphas}``); a job fixed to a value outside the sweep -- a tokenizer variant other
than an alpha (``control``, ``noentropy``), the phase-2 tokenizer or decoder, a paper table -- gets
a group named ``<rule>_<value>`` (``train_ar_control@base-0``, ``sample_phase2@ar-0``,
``paper_table_table2_reconstruction``).

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

__all__ = ["AXES", "REPOSITORY", "build_dag", "generate_dvc_yaml", "render_dvc_yaml", "snakemake_dag",
           "write_dvc_yaml"]

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
    "eval_tokenizer": ("alpha", "seed"),
    "encode_tokens": ("alpha", "seed"),
    "train_ar": ("size", "alpha", "seed"),
    "train_nar": ("size", "alpha", "seed"),
    "sample": ("objective", "alpha", "seed"),
    "eval_samples": ("objective", "alpha", "seed"),
    "sample_grid": ("objective", "decoder"),
}
# Rules whose `seed` wildcard is a sampling seed (evaluation.sampling_seeds); every other `seed` is
# a training seed (evaluation.experiment_seeds, run.seed). A path's seed is a stage's `${item.seed}`
# only when both are seeds of the same kind.
SAMPLING_SEED_RULES = frozenset({"sample", "eval_samples"})
# Wildcard values that name a stage group `<rule>_<value>` (when the wildcard is no axis of the rule):
# the default value of each is left out of the name.
NAME_DEFAULTS = {"variant": None, "phase": "phase1", "decoder": "phase1", "table": None}
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
    ("semantic-net", ("train_semantic",),
     "embedded semantic classifier (perceptual backbone and FID features of the embedded default)"),
    ("tokenizers-phase1", ("tokenizer_phase1",),
     "phase-1 SeQ-GAN tokenizers, one per tokenizer variant and experiment seed"),
    ("tokenizer-phase2", ("tokenizer_phase2",),
     "phase-2 tokenizer (attention decoder on the frozen phase-1 encoder and codebook)"),
    ("transformers", ("train_ar", "train_nar"),
     "AR / NAR transformers per objective, size, tokenizer variant and seed"),
)

HEADER = """\
# GENERATED by `seqgan dvc-yaml` (also run by `seqgan use-config`) from the Snakemake DAG of the
# default target for the params in use (params.yaml with run.name {run_name}) and the run
# declarations in seqgan/runs.py. Do not edit by hand: change the rules or seqgan/runs.py and regenerate;
# tests/test_dvc_yaml.py fails when this file differs from what `seqgan dvc-yaml` writes.
#
# - One stage per Snakemake job group; its cmd asks Snakemake for the stage's targets with only the
#   stage's rule allowed, so DVC alone decides what upstream is stale.
# - Stage name = the rule. Sweeps are `matrix:` stages over the params lists Snakemake expands
#   (`tokenizer_phase1@0.5-0`, `train_ar@base-0.5-0`; floats print with Python's str() in both
#   tools); a job fixed to a value outside the sweep is `<rule>_<value>` (`train_ar_control@base-0`,
#   `sample_phase2@ar-0`, `paper_table_table2_reconstruction`).
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
    "jobs": [{"rule", "wildcards", "output", "output_names", "input"}]}``, paths relative to the
    working directory (or ``root``).
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
        jobs = [
            {
                "rule": job.rule.name,
                "wildcards": {k: str(v) for k, v in job.wildcards_dict.items()},
                "output": [rel(str(f)) for f in job.output],
                "output_names": names(job.output),
                "input": list(dict.fromkeys(rel(str(f)) for f in job.input)),
            }
            for job in workflow.dag.jobs
        ]
    order = {r: i for i, r in enumerate(rules)}
    jobs.sort(key=lambda j: (order[j["rule"]], j["output"], sorted(j["wildcards"].items())))
    return {"rules": rules, "patterns": patterns, "jobs": jobs}


def snakemake_dag(root: Path, params_file: Path, *, timeout: float = 600) -> dict[str, Any]:
    """:func:`build_dag` for ``params_file``, in a subprocess and a temporary working directory."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="seqgan-dvc-yaml-") as tmp:
        workdir = prepare_workdir(root, Path(params_file), Path(tmp) / "work")
        out = Path(tmp) / "dag.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        result = subprocess.run(
            [sys.executable, "-m", "seqgan.dvc_yaml", "--dump-dag", str(root), str(workdir), str(out)],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
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

    @property
    def facts(self) -> dict[str, str]:
        """The wildcards, with a tokenizer variant `alpha<a>` also as `alpha` and eval_tokenizer's
        `tokenizer` (`phase1/<variant>/seed<s>` or `phase2`) split into variant / seed / phase."""
        facts = dict(self.wildcards)
        tokenizer = facts.pop("tokenizer", None)
        if tokenizer is not None:
            match = re.fullmatch(r"phase1/([^/]+)/seed([^/]+)", tokenizer)
            if match:
                facts.update(phase="phase1", variant=match[1], seed=match[2])
            else:
                facts["phase"] = tokenizer
        if facts.get("variant", "").startswith("alpha"):
            facts["alpha"] = facts["variant"][len("alpha"):]
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
        return dict(zip(self.axes, key))


def _seed_kind(rule: str) -> str:
    return "sampling" if rule in SAMPLING_SEED_RULES else "experiment"


def _group_name(rule: str, facts: Mapping[str, str], axes: Sequence[str]) -> str:
    parts = []
    for wildcard, default in NAME_DEFAULTS.items():
        value = facts.get(wildcard)
        if value is None or value == default or wildcard in axes:
            continue
        if wildcard == "variant" and "alpha" in facts:
            continue  # an alpha of the sweep, not a variant outside it
        parts.append(value)
    return "_".join([rule, *parts])


def _sort_values(values: Iterable[str]) -> list[str]:
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return sorted(set(values), key=key)


def _groups(dag: Mapping[str, Any]) -> list[Group]:
    jobs = [Job(**j) for j in dag["jobs"] if j["rule"] != "all"]
    groups: dict[tuple[str, str], Group] = {}
    for job in jobs:
        facts = job.facts
        rule_axes = AXES.get(job.rule, ())
        name = _group_name(job.rule, facts, rule_axes)
        fixed = name != job.rule  # a group fixed to a value outside the sweep has no alpha axis
        axes = [a for a in rule_axes if a in facts and not (fixed and a == "alpha")]
        group = groups.setdefault((job.rule, name), Group(job.rule, name, axes))
        if group.axes != axes:
            raise ValueError(f"stage {name}: jobs of rule {job.rule} differ in their wildcards ({group.axes} vs {axes})")
        group.items.setdefault(tuple(facts[a] for a in axes), []).append(job)
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
    """Writes the paths of a group's items as one template each, checked against every item."""

    def __init__(self, group: Group, keys: list[tuple[str, ...]], dag: Mapping[str, Any], raw: Mapping[str, Any]):
        self.group, self.keys, self.raw = group, keys, raw
        self.items = [group.item(k) for k in keys]
        self.patterns = dag["patterns"]
        self.producer: dict[str, tuple[Job, int]] = {}
        for j in dag["jobs"]:
            job = Job(**j)
            for index, path in enumerate(job.output):
                self.producer[path] = (job, index)
        self.data_dir = f"data/{raw['data']['name']}/"

    def _value(self, rule: str, wildcard: str, values: list[str]) -> str:
        """One wildcard of one path, its value per item: `${item.<axis>}` where it is the item's
        axis value of the same kind in every item, else the one value it has."""
        axes = self.group.axes
        if wildcard == "tokenizer" and all(re.fullmatch(r"phase1/[^/]+/seed[^/]+", v) for v in values):
            parts = [re.fullmatch(r"phase1/([^/]+)/seed([^/]+)", v).groups() for v in values]
            return (f"phase1/{self._value(rule, 'variant', [p[0] for p in parts])}"
                    f"/seed{self._value(rule, 'seed', [p[1] for p in parts])}")
        if wildcard == "variant" and "alpha" in axes and all(
            v == f"alpha{item['alpha']}" for v, item in zip(values, self.items)
        ):
            return "alpha${item.alpha}"
        same_kind = wildcard != "seed" or _seed_kind(rule) == _seed_kind(self.group.rule)
        if wildcard in axes and same_kind and all(v == item[wildcard] for v, item in zip(values, self.items)):
            return "${item.%s}" % wildcard
        if len(set(values)) != 1:
            raise ValueError(
                f"stage {self.group.name}: wildcard {wildcard} of rule {rule} varies over the matrix "
                f"({sorted(set(values))}) but is none of its axes {axes}"
            )
        return values[0]

    def template(self, paths: list[str]) -> str:
        """The template of one path slot (``paths``: its value per item)."""
        produced = [self.producer.get(p) for p in paths]
        if all(p is not None for p in produced) and len({(j.rule, i) for j, i in produced}) == 1:
            rule, index = produced[0][0].rule, produced[0][1]
            pattern = self.patterns[rule][index]
            text = _WILDCARD.sub(
                lambda m: self._value(rule, m[1], [j.wildcards[m[1]] for j, _ in produced]), pattern
            )
        elif len(set(paths)) == 1:
            text = paths[0]
        else:
            raise ValueError(f"stage {self.group.name}: the paths {paths} of its items have no common template")
        if text.startswith(self.data_dir):
            text = "data/${data.name}/" + text[len(self.data_dir):]
        for path, item in zip(paths, self.items):
            if self.render(text, item) != path:
                raise ValueError(f"stage {self.group.name}: template {text} gives {self.render(text, item)}, "
                                 f"not {path}, for item {item}")
        return text

    def render(self, text: str, item: Mapping[str, str]) -> str:
        text = text.replace("${data.name}", str(self.raw["data"]["name"]))
        for axis, value in item.items():
            text = text.replace("${item.%s}" % axis, value)
        return text

    def slots(self, per_job) -> list[str]:
        """Templates of ``per_job(job) -> [paths]`` over the items' jobs, slot by slot (one per
        path of an item, in job order: the items' jobs correspond one to one)."""
        per_item = [[p for job in self.group.items[k] for p in per_job(job)] for k in self.keys]
        if len({len(paths) for paths in per_item}) != 1:
            raise ValueError(f"stage {self.group.name}: its items' jobs differ in their number of files "
                             f"({[len(p) for p in per_item]})")
        return [self.template(list(slot)) for slot in zip(*per_item)]


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
            entry = entry.replace("${item.%s}" % axis, value)
        return entry

    entries: list[str] = []
    for item, item_keys in zip(items, per_item):
        for key in item_keys:
            if any(render(e, item) == key for e in entries):
                continue
            parts = key.split(".")
            for axis, value in item.items():
                if "." not in value:
                    parts = ["${item.%s}" % axis if p == value else p for p in parts]
            templated = ".".join(parts)
            valid = templated != key and all(render(templated, it) in ks for it, ks in zip(items, per_item))
            entries.append(templated if valid else key)
    union = any({render(e, it) for e in entries} != set(ks) for it, ks in zip(items, per_item))
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
        matrix[axis] = "${%s}" % listed if listed else values
        ordered.append(values)
    keys = list(itertools.product(*ordered))
    if set(keys) != set(group.items):
        missing = sorted(set(keys) - set(group.items))
        raise ValueError(f"stage {group.name}: its jobs are no full matrix over {group.axes} "
                         f"(no job for {missing[:5]}); give the rule a stage layout in seqgan/dvc_yaml.py AXES")
    t = Templater(group, keys, dag, raw)

    targets = t.slots(lambda job: [job.output[target_index]])
    outputs = t.slots(lambda job: job.output)
    names = [name for job in group.items[keys[0]] for name in job.output_names]  # the same in every item
    own = set(outputs)
    deps = [d for d in dict.fromkeys(t.slots(lambda job: job.input)) if d not in own]
    params, union = _params(group, keys, raw)

    outs: list[str] = []
    metrics: list[str] = []
    plots: list[dict[str, Any]] = []
    extra_outs: list[str] = []
    extra_metrics: list[str] = []
    extra_plots: list[dict[str, Any]] = []
    for path, name in zip(outputs, names):
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

    stage: dict[str, Any] = {}
    if group.axes:
        stage["matrix"] = matrix
    stage["cmd"] = " ".join(["snakemake --cores all --allowed-rules", group.rule, "--", *targets])
    if deps:
        stage["deps"] = deps
    if params:
        stage["params"] = params
    for section, entries in (("outs", outs + extra_outs), ("metrics", metrics + extra_metrics),
                             ("plots", plots + extra_plots)):
        if entries:
            stage[section] = entries
    stage["_union_params"] = union  # comment only, removed before writing
    return stage


def _artifacts(dag: Mapping[str, Any]) -> dict[str, Any]:
    artifacts = {}
    for name, rules, desc in ARTIFACTS:
        weights = sorted(
            f for j in dag["jobs"] if j["rule"] in rules
            for f, n in zip(j["output"], j["output_names"]) if n == "weights"
        )
        if not weights:
            continue
        path = weights[0] if len(weights) == 1 else os.path.commonpath(weights)
        artifacts[name] = {"path": path, "type": "model", "desc": desc}
    return artifacts


def render_dvc_yaml(dag: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """dvc.yaml text for a DAG from :func:`build_dag` and the params it was built for."""
    targets = _target_index(dag)
    stages = {g.name: _stage(g, dag, raw, targets.get(g.rule, 0)) for g in _groups(dag)}
    artifacts = _artifacts(dag)

    lines = [HEADER.format(run_name=raw["run"]["name"]), "stages:"]
    for name, stage in stages.items():
        lines.append(f"  {name}:")
        union = stage.pop("_union_params")
        for section, value in stage.items():
            if section == "matrix":
                lines.append("    matrix:")
                lines += [f"      {axis}: {_flow(values)}" for axis, values in value.items()]
            elif section == "cmd":
                lines += _cmd(value)
            else:
                if section == "params" and union:
                    lines.append("    # one list for all items (DVC cannot vary its length per item): the union of")
                    lines.append("    # the items' keys, so an item also reruns when a key of another item changes")
                lines.append(f"    {section}:")
                for entry in value:
                    if isinstance(entry, dict):
                        ((path, spec),) = entry.items()
                        lines.append(f"    - {_scalar(path)}:")
                        lines += [f"        {k}: {_scalar(v)}" for k, v in spec.items()]
                    else:
                        lines.append(f"    - {_scalar(entry)}")
        lines.append("")
    if artifacts:
        lines.append("artifacts:")
        for name, spec in artifacts.items():
            lines.append(f"  {name}:")
            lines += [f"    {k}: {_scalar(v)}" for k, v in spec.items()]
    text = "\n".join(lines).rstrip("\n") + "\n"

    expected = {"stages": stages, **({"artifacts": artifacts} if artifacts else {})}
    if yaml.safe_load(text) != json.loads(json.dumps(expected)):
        raise AssertionError("seqgan.dvc_yaml wrote YAML that does not read back as the stages it generated")
    return text


def _cmd(cmd: str) -> list[str]:
    head, targets = cmd.split(" -- ", 1)
    if len(f"    cmd: {cmd}") <= 110:
        return [f"    cmd: {cmd}"]
    return ["    cmd: >-", f"      {head} --", *[f"      {t}" for t in targets.split(" ")]]


_PLAIN = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_./${}\[\]@+=(),' -]*")


def _scalar(value: Any) -> str:
    text = str(value)
    if (isinstance(value, str) and _PLAIN.fullmatch(text) and not text.endswith(" ")
            and ": " not in text and " #" not in text and yaml.safe_load(text) == text):
        return text
    if isinstance(value, str):
        return json.dumps(value)
    return text


def _flow(values: str | list[str]) -> str:
    if isinstance(values, str):
        return values
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


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
        raise SystemExit("usage: python -m seqgan.dvc_yaml --dump-dag ROOT WORKDIR OUT (internal; use `seqgan dvc-yaml`)")
    _root, _workdir, _out = (Path(a) for a in sys.argv[2:])
    _out.write_text(json.dumps(build_dag(_root, _workdir), indent=1))
