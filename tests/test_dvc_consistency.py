"""dvc.yaml against Snakemake's DAG: the same rules, outputs, inputs and parameters.

dvc.yaml is a coarse layer over the Snakemake rules (DESIGN: "Snakemake and DVC together"): each
stage's cmd is ``snakemake --cores all --allowed-rules <rules> -- <targets>``. The two files can
drift apart silently -- a new rule without a stage, an output DVC does not cache, a parameter that
reruns Snakemake but not DVC -- so this test builds both views for the current params.yaml and
compares them:

* DVC side: dvc.yaml resolved by DVC itself (matrix / foreach expanded, ``${...}`` filled in).
* Snakemake side: the job DAG of ``rule all`` plus every stage target, built from nothing in a
  temporary directory by a subprocess (this file run as a script; it patches Snakemake internals,
  which must not leak into the pytest process). Each job comes with the params.yaml keys its
  ``params:`` use: the config is replaced by look-alike values that remember their key path
  (after validation), so a param ``data=config["data"]`` reports ``data`` and a param function
  that compares or formats ``config["semantic"]["backbone"]`` reports ``semantic.backbone``.
  Strings built from config while the rule files are parsed (``" ".join(f"--run {v}" ...)``)
  carry no key; the keys such strings depend on select which runs exist and are listed in
  ``STRUCTURAL_KEYS`` below.

A stage's jobs are its targets' jobs plus, transitively, the jobs producing their inputs with a rule
the stage allows (what ``--allowed-rules`` makes Snakemake run).

Justified differences (stated once, checked everywhere):
* A stage may also track what its rules write beside a declared output, in the same directory
  (DVCLive's ``metrics.json`` / ``plots/`` and ``train.csv`` in a run's log directory), or track the
  directory of a declared output as a whole (a sample folder with its images): a run-cache restore
  must bring back every file a later rule reads.
* A dep may be a directory that holds the inputs (package sources listed as ``code``; the runs a
  figure reads, one per tokenizer variant, which DVC cannot expand from a params list).
* Stage name = the rule of its targets, or ``<rule>_<wildcard value>`` for a stage fixed to one value
  DVC cannot add to a params list (the ``control`` tokenizer, the ``phase2`` tokenizer / decoder, one
  stage per paper table, whose inputs differ too much for one ``matrix``).
* A rule may pass a hash of params sections (``Params.section_hash``) instead of the sections; the
  hash counts as a use of those sections.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Keys that choose which runs exist (variant names, seeds, objectives, model sizes). A figure or
# table that reads one file per run gets them through strings built at parse time, which carry no
# key; a stage listing them is right (DVC must rerun it when a run is added or removed even though
# its directory deps may still hold the old runs).
STRUCTURAL_KEYS = {
    "tokenizer.alphas",
    "tokenizer.control_no_perceptual",
    "tokenizer.phase2.from_alpha",
    "evaluation.experiment_seeds",
    "evaluation.sampling_seeds",
    "evaluation.generation_reference",
    "transformer.objectives",
    "transformer.models",
    "run.seed",
}


# --------------------------------------------------------------------------------------------------
# Snakemake side (runs in a subprocess: `python tests/test_dvc_consistency.py WORKDIR OUT TARGET...`)
# --------------------------------------------------------------------------------------------------

_USED: list[tuple] | None = None  # key paths touched while a param is evaluated (None: not recording)


class _Traced:
    """Mixin: a value derived from config that knows its key path(s) and reports uses of itself."""

    _paths: tuple[tuple, ...] = ()


def _touch(value: _Traced) -> None:
    if _USED is not None:
        _USED.extend(value._paths)


def _scalar_type(base: type) -> type:
    def use(name):
        original = getattr(base, name)

        def method(self, *args, **kwargs):
            _touch(self)
            return original(self, *args, **kwargs)

        return method

    names = ["__format__", "__str__", "__eq__", "__ne__", "__bool__", "__lt__", "__gt__", "__le__",
             "__ge__", "__add__", "__mul__", "__int__", "__float__", "__contains__", "__iter__", "__len__"]
    namespace = {n: use(n) for n in names if hasattr(base, n)}
    namespace["__hash__"] = base.__hash__
    return type(f"Traced{base.__name__.title()}", (_Traced, base), namespace)


_TStr, _TInt, _TFloat = _scalar_type(str), _scalar_type(int), _scalar_type(float)


class _TDict(_Traced, dict):
    def __iter__(self):
        _touch(self)
        return dict.__iter__(self)

    def __contains__(self, key):
        _touch(self)
        return dict.__contains__(self, key)

    def __eq__(self, other):
        _touch(self)
        return dict.__eq__(self, other)

    __hash__ = None


class _TList(_Traced, list):
    def __iter__(self):
        _touch(self)
        return list.__iter__(self)

    def __contains__(self, item):
        _touch(self)
        return list.__contains__(self, item)

    def __len__(self):
        _touch(self)
        return list.__len__(self)

    def __eq__(self, other):
        _touch(self)
        return list.__eq__(self, other)

    __hash__ = None


def _wrap(value, path: tuple):
    if isinstance(value, dict):
        wrapped = _TDict({k: _wrap(v, (*path, k)) for k, v in value.items()})
    elif isinstance(value, list):
        wrapped = _TList(_wrap(v, (*path, i)) for i, v in enumerate(value))
    elif isinstance(value, bool):  # bool cannot be subclassed; an int keeps truthiness and ==
        wrapped = _TInt(int(value))
    elif isinstance(value, int):
        wrapped = _TInt(value)
    elif isinstance(value, float):
        wrapped = _TFloat(value)
    elif isinstance(value, str):
        wrapped = _TStr(value)
    else:
        return value
    wrapped._paths = (path,)
    return wrapped


def _key(path: tuple) -> str:
    """('transformer', 'models', 0) -> 'transformer.models' (a list is used as a whole)."""
    return ".".join(str(p) for p in path if not isinstance(p, int))


def _keys_in(value, into: set[str]) -> None:
    """Key paths of the traced values inside a param value (without touching them)."""
    if isinstance(value, _Traced):
        into.update(_key(p) for p in value._paths)
        return
    if isinstance(value, dict):
        for item in dict.values(value):
            _keys_in(item, into)
    elif isinstance(value, (list, tuple)):
        for item in list.__iter__(value) if isinstance(value, list) else value:
            _keys_in(item, into)


def _dump_dag(workdir: Path, out: Path, targets: list[str]) -> None:
    global _USED
    import snakemake.utils
    from snakemake.api import SnakemakeApi
    from snakemake.iocontainers import Wildcards
    from snakemake.rules import Rule
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    original_validate = snakemake.utils.validate

    def validate_then_trace(data, schema, *args, **kwargs):
        if isinstance(schema, str) and not Path(schema).is_absolute():
            schema = str(ROOT / schema)  # relative to the calling Snakefile, as Snakemake resolves it
        result = original_validate(data, schema, *args, **kwargs)
        if isinstance(data, dict) and "tokenizer" in data:  # the workflow's config: trace it from here on
            for key in list(data):
                data[key] = _wrap(data[key], (key,))
        return result

    snakemake.utils.validate = validate_then_trace

    # A rule may pass a hash of params sections instead of the sections (seqgan.config.Params):
    # the hash string carries the keys it was computed from.
    from seqgan.config import Params

    original_hash = Params.section_hash

    def traced_hash(self, *key_paths):
        digest = _TStr(original_hash(self, *key_paths))
        digest._paths = tuple(tuple(k.split(".")) for k in key_paths)
        return digest

    Params.section_hash = traced_hash

    params_keys: dict[tuple, set[str]] = {}
    original_expand = Rule.expand_params

    def expand_and_trace(self, wildcards, input, output, job, omit_callable=False):
        global _USED
        result = original_expand(self, wildcards, input, output, job, omit_callable=omit_callable)
        keys: set[str] = set()
        for _name, item in self.params._allitems():
            _USED = []
            try:
                if callable(item):
                    aux = {"input": input._plainstrings(), "output": output._plainstrings(),
                           "threads": job.resources._cores, "resources": job.resources}
                    wanted = inspect.signature(item).parameters
                    item = item(Wildcards(fromdict=wildcards), **{k: v for k, v in aux.items() if k in wanted})
                _keys_in(item, keys)
                keys.update(_key(p) for p in _USED)
            finally:
                _USED = None
        params_keys[(self.name, tuple(str(f) for f in output))] = keys
        return result

    Rule.expand_params = expand_and_trace

    def rel(path: str) -> str:
        p = Path(path)
        if p.is_absolute():
            for base in (ROOT, workdir):
                if p.is_relative_to(base):
                    return p.relative_to(base).as_posix()
        return p.as_posix()

    output_settings = OutputSettings(quiet={Quietness.ALL, Quietness.PROGRESS, Quietness.RULES, Quietness.HOST})
    with SnakemakeApi(output_settings) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=ROOT / "Snakefile", workdir=workdir
        )
        workflow_api.dag(DAGSettings(targets=frozenset(targets), forceall=True))
        workflow = workflow_api._workflow
        rules = sorted(r.name for r in workflow.rules)
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        jobs = []
        for job in workflow.dag.jobs:
            output = [str(f) for f in job.output]
            if (job.rule.name, tuple(output)) not in params_keys and len(job.rule.params):
                raise RuntimeError(f"Snakemake built job {job.rule.name} {output} without evaluating its params: "
                                   "the tracing hook (Rule.expand_params) no longer sees them")
            jobs.append({
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards_dict),
                "output": [rel(f) for f in output],
                "input": sorted({rel(str(f)) for f in job.input}),
                "params": sorted(params_keys.get((job.rule.name, tuple(output)), set())),
            })
    out.write_text(json.dumps({"rules": rules, "jobs": jobs}, indent=1))


# --------------------------------------------------------------------------------------------------
# Both views, built once per test session
# --------------------------------------------------------------------------------------------------


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    output: list[str]
    input: list[str]
    params: list[str]


@dataclass
class Stage:
    name: str
    cmd: str
    rules: list[str]
    targets: list[str]
    deps: list[str]
    params: list[str]
    outs: list[str]
    uncached: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.name.split("@", 1)[0]


@dataclass
class Dag:
    rules: list[str]
    jobs: list[Job]
    producer: dict[str, Job]  # output file -> the job writing it
    default_jobs: list[Job]  # what `snakemake` (rule all) runs
    params_yaml: dict


def _covers(parent: str, path: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _parse_cmd(name: str, cmd: str) -> tuple[list[str], list[str]]:
    """`snakemake --cores all --allowed-rules R... -- T...` -> (rules, targets)."""
    words = shlex.split(cmd)
    expected = ["snakemake", "--cores", "all", "--allowed-rules"]
    if words[:4] != expected or "--" not in words:
        raise AssertionError(
            f"dvc.yaml stage {name}: cmd must be `snakemake --cores all --allowed-rules <rules> -- "
            f"<targets>`, got {cmd!r}"
        )
    split = words.index("--")
    return words[4:split], words[split + 1:]


def _dvc_stages(workdir: Path, dvc_yaml: str) -> list[Stage]:
    """dvc.yaml resolved by DVC itself (against the repository's params.yaml)."""
    from dvc.repo import Repo

    workdir.mkdir(parents=True, exist_ok=True)
    # DVC's site cache (state, index) in the temporary directory too, not under /var/tmp/dvc.
    with mock.patch.dict(os.environ, {"DVC_SITE_CACHE_DIR": str(workdir / ".site_cache")}):
        Repo.init(str(workdir), no_scm=True)
        (workdir / "dvc.yaml").write_text(dvc_yaml)
        shutil.copy(ROOT / "params.yaml", workdir / "params.yaml")
        with Repo(str(workdir)) as repo:
            return [_stage(st) for st in repo.index.stages]


def _stage(st) -> Stage:
    """Our view of a resolved dvc.stage.PipelineStage."""
    from dvc.dependency.param import ParamsDependency

    rules, targets = _parse_cmd(st.name, st.cmd)
    return Stage(
        name=st.name,
        cmd=st.cmd,
        rules=rules,
        targets=targets,
        deps=[d.def_path for d in st.deps if not isinstance(d, ParamsDependency)],
        params=[k for d in st.deps if isinstance(d, ParamsDependency) for k in d.params],
        outs=[o.def_path for o in st.outs],
        uncached=[o.def_path for o in st.outs if not o.use_cache or o.persist],
    )


def _closure(start: list[Job], producer: dict[str, Job], allowed: set[str] | None) -> list[Job]:
    """The jobs `start` needs, following inputs to their producers (only rules in `allowed`)."""
    seen: dict[int, Job] = {}
    todo = list(start)
    while todo:
        job = todo.pop()
        if id(job) in seen:
            continue
        seen[id(job)] = job
        for f in job.input:
            up = producer.get(f)
            if up is not None and (allowed is None or up.rule in allowed):
                todo.append(up)
    return list(seen.values())


def _attach_jobs(stages: list[Stage], dag: Dag) -> list[Stage]:
    for stage in stages:
        starts = [dag.producer[t] for t in stage.targets if t in dag.producer]
        stage.jobs = _closure(starts, dag.producer, set(stage.rules))
    return stages


@pytest.fixture(scope="module")
def dag(tmp_path_factory) -> Dag:
    import yaml

    stages = _dvc_stages(tmp_path_factory.mktemp("dvc"), (ROOT / "dvc.yaml").read_text())
    workdir = tmp_path_factory.mktemp("snakemake")
    shutil.copy(ROOT / "params.yaml", workdir / "params.yaml")
    out = workdir / "dag.json"
    targets = ["all", *sorted({t for s in stages for t in s.targets})]
    result = subprocess.run(
        [sys.executable, __file__, str(workdir), str(out), *targets],
        capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(
            "building Snakemake's DAG for `rule all` and the dvc.yaml stage targets failed "
            f"(a stage target no rule produces?):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    raw = json.loads(out.read_text())
    jobs = [Job(**j) for j in raw["jobs"]]
    producer = {f: j for j in jobs for f in j.output}
    all_job = next(j for j in jobs if j.rule == "all")
    default_jobs = [j for j in _closure([all_job], producer, None) if j.rule != "all"]
    params_yaml = yaml.safe_load((ROOT / "params.yaml").read_text())
    return Dag(raw["rules"], jobs, producer, default_jobs, params_yaml)


@pytest.fixture(scope="module")
def stages(dag, tmp_path_factory) -> list[Stage]:
    return _attach_jobs(_dvc_stages(tmp_path_factory.mktemp("dvc"), (ROOT / "dvc.yaml").read_text()), dag)


# --------------------------------------------------------------------------------------------------
# The checks: each returns the disagreements, one line each, naming the stage / rule / file / key
# --------------------------------------------------------------------------------------------------


def check_default_jobs_have_stages(stages: list[Stage], dag: Dag) -> list[str]:
    """A job `snakemake` (rule all) runs must belong to a stage, or `dvc repro` never builds it."""
    covered = {id(j) for s in stages for j in s.jobs}
    missing: dict[str, list[str]] = {}
    for job in dag.default_jobs:
        if id(job) not in covered:
            missing.setdefault(job.rule, []).append(job.output[0])
    return [f"rule {rule} has no DVC stage for {len(files)} job(s), e.g. {files[0]} "
            f"(add a stage named {rule} to dvc.yaml)" for rule, files in sorted(missing.items())]


def check_commands(stages: list[Stage], dag: Dag) -> list[str]:
    problems = []
    for s in stages:
        for rule in s.rules:
            if rule not in dag.rules:
                problems.append(f"{s.name}: --allowed-rules names {rule}, which is no Snakemake rule")
        if not s.targets:
            problems.append(f"{s.name}: no targets after `--`")
        for t in s.targets:
            job = dag.producer.get(t)
            if job is None:
                problems.append(f"{s.name}: target {t} is produced by no job")
            elif job.rule not in s.rules:
                problems.append(f"{s.name}: target {t} is produced by rule {job.rule}, "
                                f"not in --allowed-rules {s.rules}")
    return problems


def check_names(stages: list[Stage], dag: Dag) -> list[str]:
    """Stage (group) name = the rule of its targets, or `<rule>_<value>` for a fixed wildcard value."""
    problems = []
    for s in stages:
        target_jobs = [dag.producer[t] for t in s.targets if t in dag.producer]
        names = {j.rule for j in target_jobs}
        if len(names) != 1:
            problems.append(f"{s.name}: targets come from rules {sorted(names)}; one rule per stage")
            continue
        rule = names.pop()
        values = [{part for v in j.wildcards.values() for part in {str(v), *str(v).split("/")}} for j in target_jobs]
        allowed = {rule} | {f"{rule}_{v}" for v in set.intersection(*values)}
        if s.group not in allowed:
            problems.append(f"{s.name}: its targets come from rule {rule}; name the stage {rule} "
                            f"(or {rule}_<wildcard value> for a stage fixed to one value)")
    seen: dict[tuple, str] = {}
    for s in stages:
        key = tuple(sorted(s.targets))
        if key in seen:
            problems.append(f"{s.name} and {seen[key]} have the same targets")
        seen[key] = s.name
    return problems


def check_outs(stages: list[Stage], dag: Dag) -> list[str]:
    """Outs = the jobs' outputs (+ files beside them / their directory); all cached, none persisted."""
    problems = []
    for s in stages:
        produced = sorted({f for j in s.jobs for f in j.output})
        directories = {str(Path(f).parent) for f in produced}
        for f in produced:
            holders = [o for o in s.outs if _covers(o, f)]
            if len(holders) != 1:
                problems.append(f"{s.name}: rule output {f} is tracked by {len(holders)} outs {holders} (need 1)")
        for o in s.outs:
            covers_output = any(_covers(o, f) for f in produced)
            beside_output = o not in produced and any(_covers(d, o) for d in directories)
            if not (covers_output or beside_output):
                problems.append(f"{s.name}: out {o} is no output of rules {s.rules} for targets {s.targets} "
                                f"and not beside one")
        for o in s.uncached:
            problems.append(f"{s.name}: out {o} is not cached or is persisted; the run cache needs cached outs")
    return problems


def check_deps(stages: list[Stage], dag: Dag) -> list[str]:
    """Deps = the inputs the stage's jobs read from elsewhere (a directory may hold several)."""
    problems = []
    for s in stages:
        produced = {f for j in s.jobs for f in j.output}
        needed = sorted({f for j in s.jobs for f in j.input if f not in produced})
        for f in needed:
            if not any(_covers(d, f) for d in s.deps):
                problems.append(f"{s.name}: rule input {f} is no dep")
        for d in s.deps:
            if not any(_covers(d, f) for f in needed):
                problems.append(f"{s.name}: dep {d} holds no input of rules {s.rules}")
            if any(_covers(d, f) for f in produced):
                problems.append(f"{s.name}: dep {d} holds an output of the stage itself")
    return problems


def _in_params_yaml(tree: dict, key: str) -> bool:
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _key_covers(parent: str, key: str) -> bool:
    return key == parent or key.startswith(parent + ".")


def check_params(stages: list[Stage], dag: Dag) -> list[str]:
    """Stage params exist, cover every key the rules' params use, and add only run-selecting keys."""
    problems = []
    for s in stages:
        for key in s.params:
            if not _in_params_yaml(dag.params_yaml, key):
                problems.append(f"{s.name}: params key {key} is not in params.yaml")
        used = sorted({k for j in s.jobs for k in j.params})
        for key in used:
            if not any(_key_covers(p, key) for p in s.params):
                problems.append(f"{s.name}: rules {s.rules} pass params.yaml key {key}; add it to the stage's params")
        for key in s.params:
            if key not in STRUCTURAL_KEYS and not any(_key_covers(key, k) for k in used):
                problems.append(f"{s.name}: params key {key} is used by none of rules {s.rules} (needless reruns)")
    return problems


def check_one_stage_per_job(stages: list[Stage], dag: Dag) -> list[str]:
    owners: dict[int, list[str]] = {}
    for s in stages:
        for j in s.jobs:
            owners.setdefault(id(j), []).append(s.name)
    return [f"job {j.rule} {j.output[0]} is run by stages {owners[id(j)]}"
            for j in dag.jobs if len(owners.get(id(j), [])) > 1]


CHECKS = [check_default_jobs_have_stages, check_commands, check_names, check_outs, check_deps, check_params,
          check_one_stage_per_job]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_dvc_yaml_agrees_with_snakemake(check, stages, dag):
    problems = check(stages, dag)
    if problems:
        raise AssertionError(f"dvc.yaml and the Snakemake workflow disagree ({check.__doc__ or check.__name__}):\n  "
                             + "\n  ".join(problems))


def test_the_checks_name_what_drifted(dag, tmp_path):
    """Break dvc.yaml in six typical ways; each break is reported, naming the stage, rule, file or key."""
    import yaml

    def problems(spec: dict, where: Path) -> set[str]:
        found = _attach_jobs(_dvc_stages(where, yaml.safe_dump(spec, sort_keys=False)), dag)
        return {p for check in CHECKS for p in check(found, dag)}

    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    before = problems(spec, tmp_path / "as_is")  # empty when the other tests pass
    st = spec["stages"]
    del st["fig2_val_loss"]  # a default target rule without a stage
    st["train_ar"]["params"] = [k for k in st["train_ar"]["params"] if k != "transformer.optimizer"]
    st["train_semantic"]["outs"].remove("models/semantic/net.json")
    st["tokenizer_phase2"]["deps"].remove("models/semantic/net.safetensors")
    st["model_sizes"]["params"] = [*st["model_sizes"]["params"], "transformer.no_such_key"]
    st["table_of_sizes"] = st.pop("model_sizes")
    new = sorted(problems(spec, tmp_path / "broken") - before)

    train_ar_stages = [f"train_ar@{size}-{a}-{s}" for size in dag.params_yaml["transformer"]["models"]
                       for a in dag.params_yaml["tokenizer"]["alphas"]
                       for s in dag.params_yaml["evaluation"]["experiment_seeds"]]
    expected = sorted([
        "rule fig2_val_loss has no DVC stage for 1 job(s), e.g. results/fig2_val_loss.pdf "
        "(add a stage named fig2_val_loss to dvc.yaml)",
        *[f"{name}: rules ['train_ar'] pass params.yaml key transformer.optimizer; add it to the stage's params"
          for name in train_ar_stages],
        "train_semantic: rule output models/semantic/net.json is tracked by 0 outs [] (need 1)",
        "tokenizer_phase2: rule input models/semantic/net.safetensors is no dep",
        "table_of_sizes: params key transformer.no_such_key is not in params.yaml",
        "table_of_sizes: params key transformer.no_such_key is used by none of rules ['model_sizes'] (needless reruns)",
        "table_of_sizes: its targets come from rule model_sizes; name the stage model_sizes "
        "(or model_sizes_<wildcard value> for a stage fixed to one value)",
    ])
    assert new == expected


if __name__ == "__main__":
    _dump_dag(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3:])
