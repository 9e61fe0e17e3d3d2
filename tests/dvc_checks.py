"""dvc.yaml against Snakemake's DAG: the same jobs, outputs, inputs and parameters (test helpers).

dvc.yaml is a layer over the Snakemake rules (docs/dvc.md): each stage's cmd is
``snakemake --cores all --allowed-rules <rule> -- <targets>``. ``seqgan dvc-yaml`` generates it from
the DAG; these checks compare the result with the DAG independently of the generator:

* DVC side: the dvc.yaml text resolved by DVC itself (matrix / foreach expanded, ``${...}`` filled in
  from the params file).
* Snakemake side: the job DAG of ``rule all`` (:func:`seqgan.dvc_yaml.build_dag`, in a subprocess:
  this file run as a script patches Snakemake internals, which must not leak into the pytest
  process). Each job comes with the params.yaml keys its ``params:`` use: the config is replaced by
  look-alike values that remember their key path (after validation), so a param
  ``run=run_values(...)`` reports the keys it holds and a param function that compares or formats
  ``config["semantic"]["backbone"]`` reports ``semantic.backbone``.

A stage's jobs are its targets' jobs plus, transitively, the jobs producing their inputs with a rule
the stage allows (what ``--allowed-rules`` makes Snakemake run).

Justified differences (stated once, checked everywhere):
* A stage may also track what its rules write beside a declared output, in the same directory
  (DVCLive's ``metrics.json`` / ``plots/`` and ``train.csv`` in a run's log directory), or the
  directory of a declared output as a whole (a sample folder with its images): a run-cache restore
  must bring back every file a later rule reads; a dep may be such a directory.
* Stage name = the rule of its targets, or ``<rule>_<value>[_<value>]`` for a stage fixed to
  wildcard values outside the sweep (the ``control`` tokenizer, the ``phase2`` tokenizer / decoder,
  a paper table, the ``large`` transformer where only ``transformer.models[0]`` is swept).
* The params of a matrix stage are one list for all its items (DVC interpolates ``${item.x}``
  inside an entry but cannot vary the number of entries): a key may be there because another item
  of the same stage group uses it.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# Snakemake side (runs in a subprocess: `python tests/dvc_checks.py ROOT WORKDIR OUT`)
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

    names = [
        "__format__",
        "__str__",
        "__eq__",
        "__ne__",
        "__bool__",
        "__lt__",
        "__gt__",
        "__le__",
        "__ge__",
        "__add__",
        "__mul__",
        "__int__",
        "__float__",
        "__contains__",
        "__iter__",
        "__len__",
    ]
    namespace = {n: use(n) for n in names if hasattr(base, n)}
    namespace["__hash__"] = base.__hash__
    return type(f"Traced{base.__name__.title()}", (_Traced, base), namespace)


_TStr, _TInt, _TFloat = _scalar_type(str), _scalar_type(int), _scalar_type(float)


class _TDict(_Traced, dict):
    # `key in section` is navigation (seqgan.config.lookup walks a key path that way), not a use of
    # the whole section; iterating over it or comparing it is.
    def __iter__(self):
        _touch(self)
        return dict.__iter__(self)

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


def traced_dag(root: Path, workdir: Path) -> dict:
    """:func:`seqgan.dvc_yaml.build_dag`, each job with the params.yaml keys its ``params:`` use."""
    global _USED
    import snakemake.utils
    from snakemake.iocontainers import Wildcards
    from snakemake.rules import Rule

    from seqgan.dvc_yaml import build_dag

    original_validate = snakemake.utils.validate

    def validate_then_trace(data, schema, *args, **kwargs):
        if isinstance(schema, str) and not Path(schema).is_absolute():
            schema = str(root / schema)  # relative to the calling Snakefile, as Snakemake resolves it
        result = original_validate(data, schema, *args, **kwargs)
        if isinstance(data, dict) and "tokenizer" in data:  # the workflow's config: trace it from here on
            for key in list(data):
                data[key] = _wrap(data[key], (key,))
        return result

    snakemake.utils.validate = validate_then_trace

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
                    aux = {
                        "input": input._plainstrings(),
                        "output": output._plainstrings(),
                        "threads": job.resources._cores,
                        "resources": job.resources,
                    }
                    wanted = inspect.signature(item).parameters
                    item = item(Wildcards(fromdict=wildcards), **{k: v for k, v in aux.items() if k in wanted})
                _keys_in(item, keys)
                keys.update(_key(p) for p in _USED)
            finally:
                _USED = None
        params_keys[(self.name, tuple(os.path.normpath(str(f)) for f in output))] = keys
        return result

    Rule.expand_params = expand_and_trace

    dag = build_dag(root, workdir)
    for job in dag["jobs"]:
        key = (job["rule"], tuple(os.path.normpath(f) for f in job["output"]))
        if key not in params_keys and job["rule"] != "all":
            raise RuntimeError(
                f"Snakemake built job {job['rule']} {job['output']} without evaluating its params: "
                "the tracing hook (Rule.expand_params) no longer sees them"
            )
        job["params"] = sorted(params_keys.get(key, set()))
    return dag


def traced_dags(params_files: list[Path], tmp: Path, *, parallel: int = 3) -> dict[Path, dict]:
    """:func:`traced_dag` per params file, each in its own subprocess (``parallel`` at a time)."""
    from seqgan.dvc_yaml import prepare_workdir

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    todo, results = list(enumerate(params_files)), {}
    while todo:
        batch, todo = todo[:parallel], todo[parallel:]
        running = []
        for i, params_file in batch:
            workdir = prepare_workdir(ROOT, params_file, tmp / f"work{i}")
            out = tmp / f"dag{i}.json"
            proc = subprocess.Popen(
                [sys.executable, __file__, str(ROOT), str(workdir), str(out)],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            running.append((params_file, out, proc))
        for params_file, out, proc in running:
            stdout, stderr = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"building Snakemake's DAG for {params_file} failed:\n{stdout[-3000:]}\n{stderr[-6000:]}"
                )
            results[params_file] = json.loads(out.read_text())
    return results


# --------------------------------------------------------------------------------------------------
# Both views
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


def snakemake_view(raw_dag: dict, params_yaml: dict) -> Dag:
    jobs = [Job(**{k: j[k] for k in ("rule", "wildcards", "output", "input", "params")}) for j in raw_dag["jobs"]]
    producer = {f: j for j in jobs for f in j.output}
    all_job = next(j for j in jobs if j.rule == "all")
    default_jobs = [j for j in _closure([all_job], producer, None) if j.rule != "all"]
    return Dag(raw_dag["rules"], jobs, producer, default_jobs, params_yaml)


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
    return words[4:split], words[split + 1 :]


def dvc_stages(workdir: Path, dvc_yaml: str, params_file: Path) -> list[Stage]:
    """``dvc_yaml`` resolved by DVC itself, against ``params_file`` as params.yaml (its pipeline
    graph built, as `dvc repro` / `dvc dag` build it)."""
    from dvc.repo import Repo

    workdir.mkdir(parents=True, exist_ok=True)
    # DVC's site cache (state, index) in the temporary directory too, not under /var/tmp/dvc.
    with mock.patch.dict(os.environ, {"DVC_SITE_CACHE_DIR": str(workdir / ".site_cache")}):
        Repo.init(str(workdir), no_scm=True)
        (workdir / "dvc.yaml").write_text(dvc_yaml)
        (workdir / "params.yaml").write_bytes(Path(params_file).read_bytes())
        with Repo(str(workdir)) as repo, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # pygtrie's, from inside DVC
            # DVC's pipeline graph, as `dvc repro` builds it: fails on overlapping outs or a cycle.
            assert repo.index.graph is not None
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


def attach_jobs(stages: list[Stage], dag: Dag) -> list[Stage]:
    for stage in stages:
        starts = [dag.producer[t] for t in stage.targets if t in dag.producer]
        stage.jobs = _closure(starts, dag.producer, set(stage.rules))
    return stages


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
    return [
        f"rule {rule} has no DVC stage for {len(files)} job(s), e.g. {files[0]} (add a stage named {rule} to dvc.yaml)"
        for rule, files in sorted(missing.items())
    ]


def check_commands(stages: list[Stage], dag: Dag) -> list[str]:
    """Every stage asks Snakemake for files that jobs of its allowed rules make (no job beyond the DAG)."""
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
                problems.append(f"{s.name}: target {t} is produced by no job of the default target")
            elif job.rule not in s.rules:
                problems.append(
                    f"{s.name}: target {t} is produced by rule {job.rule}, not in --allowed-rules {s.rules}"
                )
    return problems


def check_names(stages: list[Stage], dag: Dag) -> list[str]:
    """Stage (group) name = the rule of its targets, or `<rule>_<value>[_<value>]` for fixed wildcard values."""
    problems = []
    for s in stages:
        target_jobs = [dag.producer[t] for t in s.targets if t in dag.producer]
        names = {j.rule for j in target_jobs}
        if len(names) != 1:
            problems.append(f"{s.name}: targets come from rules {sorted(names)}; one rule per stage")
            continue
        rule = names.pop()
        values = set.intersection(
            *[{part for v in j.wildcards.values() for part in {str(v), *str(v).split("/")}} for j in target_jobs]
        )
        allowed = {rule} | {"_".join([rule, *combo]) for n in (1, 2) for combo in itertools.permutations(values, n)}
        if s.group not in allowed:
            problems.append(
                f"{s.name}: its targets come from rule {rule}; name the stage {rule} "
                f"(or {rule}_<wildcard value> for a stage fixed to one value)"
            )
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
                problems.append(
                    f"{s.name}: out {o} is no output of rules {s.rules} for targets {s.targets} and not beside one"
                )
        for o in s.uncached:
            problems.append(f"{s.name}: out {o} is not cached or is persisted; the run cache needs cached outs")
    return problems


def check_deps(stages: list[Stage], dag: Dag) -> list[str]:
    """Deps = the inputs the stage's jobs read from elsewhere (a directory only where another stage's
    out is that directory)."""
    problems = []
    outs = {o for s in stages for o in s.outs}
    for s in stages:
        produced = {f for j in s.jobs for f in j.output}
        needed = sorted({f for j in s.jobs for f in j.input if f not in produced})
        for f in needed:
            if not any(_covers(d, f) for d in s.deps):
                problems.append(f"{s.name}: rule input {f} is no dep")
        for d in s.deps:
            if d not in needed and d not in outs:
                problems.append(f"{s.name}: dep {d} is no input of rules {s.rules} (nor another stage's out)")
            elif not any(_covers(d, f) for f in needed):
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
    """Stage params exist, cover every key the rules' params use, and add only keys another item of
    the same stage group uses (a matrix has one params list)."""
    problems = []
    group_used: dict[str, set[str]] = {}
    for s in stages:
        group_used.setdefault(s.group, set()).update(k for j in s.jobs for k in j.params)
    for s in stages:
        for key in s.params:
            if not _in_params_yaml(dag.params_yaml, key):
                problems.append(f"{s.name}: params key {key} is not in params.yaml")
        used = sorted({k for j in s.jobs for k in j.params})
        for key in used:
            if not any(_key_covers(p, key) for p in s.params):
                problems.append(f"{s.name}: rules {s.rules} pass params.yaml key {key}; add it to the stage's params")
        for key in s.params:
            if not any(_key_covers(key, k) for k in group_used[s.group]):
                problems.append(f"{s.name}: params key {key} is used by none of rules {s.rules} (needless reruns)")
    return problems


def check_one_stage_per_job(stages: list[Stage], dag: Dag) -> list[str]:
    owners: dict[int, list[str]] = {}
    for s in stages:
        for j in s.jobs:
            owners.setdefault(id(j), []).append(s.name)
    return [
        f"job {j.rule} {j.output[0]} is run by stages {owners[id(j)]}"
        for j in dag.jobs
        if len(owners.get(id(j), [])) > 1
    ]


CHECKS = [
    check_default_jobs_have_stages,
    check_commands,
    check_names,
    check_outs,
    check_deps,
    check_params,
    check_one_stage_per_job,
]


def problems(stages: list[Stage], dag: Dag) -> set[str]:
    return {p for check in CHECKS for p in check(stages, dag)}


if __name__ == "__main__":
    _root, _workdir, _out = (Path(a).resolve() for a in sys.argv[1:4])
    _out.write_text(json.dumps(traced_dag(_root, _workdir), indent=1))
