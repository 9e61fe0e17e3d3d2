"""`seqgan dvc-yaml`: dvc.yaml generated from the Snakemake DAG and seqgan/runs.py.

For params.yaml and every paper configuration (configs/*.yaml) the generated file must resolve with
DVC's own parser and plan exactly the jobs Snakemake plans for `rule all` (tests/dvc_checks.py: every
job in one stage, the same outputs, inputs and params keys); the committed dvc.yaml must be the
generated one for the committed params.yaml. Fast: no training; one Snakemake DAG per params file
(subprocesses, three at a time), DVC's parser in-process.
"""

from __future__ import annotations

import difflib

import pytest
import yaml
from dvc_checks import CHECKS, ROOT, attach_jobs, dvc_stages, problems, snakemake_view, traced_dags

import seqgan.dvc_yaml
from seqgan.dvc_yaml import generate_dvc_yaml, render_dvc_yaml, write_dvc_yaml

# configs/embedded.yaml is params.yaml (tests/test_config.py keeps them equal): planned once
PARAMS_FILES = [ROOT / "params.yaml", *sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.stem != "embedded")]
IDS = [p.stem for p in PARAMS_FILES]


@pytest.fixture(scope="module")
def dags(tmp_path_factory) -> dict[str, dict]:
    """Snakemake's DAG (with each job's params keys) per params file, by file stem."""
    built = traced_dags(PARAMS_FILES, tmp_path_factory.mktemp("snakemake"))
    return {p.stem: built[p] for p in PARAMS_FILES}


@pytest.fixture(scope="module")
def generated(dags) -> dict[str, str]:
    """The generated dvc.yaml text per params file (seqgan.dvc_yaml on the same DAG)."""
    return {p.stem: render_dvc_yaml(dags[p.stem], yaml.safe_load(p.read_text())) for p in PARAMS_FILES}


@pytest.fixture(scope="module")
def views(dags, generated, tmp_path_factory):
    """(DVC's stages with their Snakemake jobs, Snakemake's DAG) per params file."""
    result = {}
    for params_file in PARAMS_FILES:
        name = params_file.stem
        dag = snakemake_view(dags[name], yaml.safe_load(params_file.read_text()))
        stages = dvc_stages(tmp_path_factory.mktemp(f"dvc_{name}"), generated[name], params_file)
        result[name] = (attach_jobs(stages, dag), dag)
    return result


@pytest.fixture(scope="module")
def dvc_yaml_for_params_yaml() -> str:
    """What `seqgan dvc-yaml` writes for the committed params.yaml."""
    return generate_dvc_yaml(ROOT, ROOT / "params.yaml")


def test_committed_dvc_yaml_is_the_generated_one(dvc_yaml_for_params_yaml):
    committed = (ROOT / "dvc.yaml").read_text()
    expected = dvc_yaml_for_params_yaml
    if committed != expected:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(True),
                expected.splitlines(True),
                "dvc.yaml (committed)",
                "dvc.yaml (generated)",
                n=1,
            )
        )
        pytest.fail(f"dvc.yaml is not what `seqgan dvc-yaml` generates for params.yaml; run it:\n{diff[:6000]}")


def test_the_checks_see_the_generated_file(generated, dvc_yaml_for_params_yaml):
    """The checks' traced DAG gives the same file as `seqgan dvc-yaml`: they check what it writes."""
    assert generated["params"] == dvc_yaml_for_params_yaml


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("params_name", IDS)
def test_generated_dvc_yaml_agrees_with_snakemake(params_name, check, views):
    stages, dag = views[params_name]
    found = check(stages, dag)
    if found:
        raise AssertionError(
            f"dvc.yaml generated for {params_name} and Snakemake's DAG disagree "
            f"({check.__doc__ or check.__name__}):\n  " + "\n  ".join(found)
        )


def test_stage_names_are_the_readme_s(views):
    names = {s.name for s in views["params"][0]}
    documented = {  # docs/dvc.md: the stage names section, and the examples around it
        "prepare_data",
        "fig2_val_loss",
        "tokenizer_phase1@0.5-0",
        "train_ar@base-0.5-0",
        "train_ar@base-1.0-0",
        "tokenizer_phase1_control@0",
        "train_ar_control@base-0",
        "eval_tokenizer_phase2@0",
        "tokenizer_phase2@0",
        "sample_phase2@ar-0",
        "paper_table_table2_reconstruction",
    }
    assert documented <= names, sorted(documented - names)


def trained_ar_items(raw: dict) -> list[str]:
    """The train_ar stage items of the embedded params: every alpha at the experiment seeds, and claim 2's
    two alpha ends also at the confirmatory seeds."""
    alphas, ev = sorted(raw["tokenizer"]["alphas"]), raw["evaluation"]
    ends = {alphas[0], alphas[-1]}
    return [
        f"{size}-{a}-{s}"
        for size in raw["transformer"]["models"]
        for a in alphas
        for s in sorted({*ev["experiment_seeds"], *(ev["confirmatory_seeds"] if a in ends else [])})
    ]


def test_matrix_axes_are_the_params_lists(generated):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    spec = yaml.safe_load(generated["params"])["stages"]
    extra = set(raw["evaluation"]["confirmatory_seeds"]) - set(raw["evaluation"]["experiment_seeds"])
    assert extra, "the embedded params train claim 2's alpha ends at more seeds than the rest"
    # not every alpha x seed is a job, so the sweep is a foreach of exactly the trained items
    assert sorted(spec["train_ar"]["foreach"]) == sorted(trained_ar_items(raw))
    assert "${item.seed}" in spec["train_ar"]["do"]["cmd"]
    assert spec["sample"]["matrix"]["seed"] == "${evaluation.sampling_seeds}"
    assert spec["sample_phase2"]["matrix"] == {
        "objective": "${transformer.objectives}",
        "seed": "${evaluation.sampling_seeds}",
    }


def test_params_hold_each_item_s_own_keys(views, generated):
    """DVC interpolates `${item.size}` inside a params entry: each train_ar item depends on its own
    size's settings only (imagenet: base for six alphas, large for one -- a `foreach` of the items)."""
    train_ar = yaml.safe_load(generated["imagenet"])["stages"]["train_ar"]
    assert "large-1.0-0" in train_ar["foreach"] and "transformer.sizes.${item.size}" in train_ar["do"]["params"]
    stages = {s.name: s for s in views["imagenet"][0]}
    assert "transformer.sizes.large" in stages["train_ar@large-1.0-0"].params
    assert "transformer.sizes.base" not in stages["train_ar@large-1.0-0"].params
    assert "transformer.sizes.base" in stages["train_ar@base-0.2-0"].params
    assert "train_ar@large-0.2-0" not in stages  # not a job: not every size x alpha is trained


def test_the_checks_name_what_drifted(views, generated, tmp_path):
    """Break the generated dvc.yaml in six typical ways; each break is reported, naming the stage,
    rule, file or key."""
    stages, dag = views["params"]
    before = problems(stages, dag)  # empty when the other tests pass
    spec = yaml.safe_load(generated["params"])
    st = spec["stages"]
    del st["fig2_val_loss"]  # a default target rule without a stage
    train_ar = st["train_ar"]["do"]  # a foreach: claim 2's alpha ends train at more seeds
    train_ar["params"] = [k for k in train_ar["params"] if k != "transformer.optimizer"]
    st["train_semantic"]["outs"].remove("models/semantic/net.json")
    st["tokenizer_phase2"]["deps"].remove("models/semantic/net.safetensors")
    st["model_sizes"]["params"] = [*st["model_sizes"]["params"], "transformer.no_such_key"]
    st["table_of_sizes"] = st.pop("model_sizes")
    broken = attach_jobs(dvc_stages(tmp_path, yaml.safe_dump(spec, sort_keys=False), ROOT / "params.yaml"), dag)
    new = sorted(problems(broken, dag) - before)

    raw = dag.params_yaml
    train_ar_stages = [f"train_ar@{item}" for item in trained_ar_items(raw)]
    expected = sorted(
        [
            "rule fig2_val_loss has no DVC stage for 1 job(s), e.g. results/fig2_val_loss.pdf "
            "(add a stage named fig2_val_loss to dvc.yaml)",
            *[
                f"{name}: rules ['train_ar'] pass params.yaml key transformer.optimizer; add it to the stage's params"
                for name in train_ar_stages
            ],
            "train_semantic: rule output models/semantic/net.json is tracked by 0 outs [] (need 1)",
            *[
                f"tokenizer_phase2@{s}: rule input models/semantic/net.safetensors is no dep"
                for s in raw["evaluation"]["experiment_seeds"]
            ],
            "table_of_sizes: params key transformer.no_such_key is not in params.yaml",
            "table_of_sizes: params key transformer.no_such_key is used by none of rules ['model_sizes'] "
            "(needless reruns)",
            "table_of_sizes: its targets come from rule model_sizes; name the stage model_sizes "
            "(or model_sizes_<wildcard value> for a stage fixed to one value)",
        ]
    )
    assert new == expected


def test_write_dvc_yaml_reports_a_change(tmp_path, monkeypatch):
    texts = iter(["stages: {}\n", "stages: {}\n", "stages:\n  a:\n    cmd: true\n"])
    monkeypatch.setattr(seqgan.dvc_yaml, "generate_dvc_yaml", lambda root, params_file: next(texts))
    out = tmp_path / "dvc.yaml"
    assert write_dvc_yaml(ROOT, ROOT / "params.yaml", out) is True
    assert write_dvc_yaml(ROOT, ROOT / "params.yaml", out) is False
    assert write_dvc_yaml(ROOT, ROOT / "params.yaml", out) is True
    assert out.read_text() == "stages:\n  a:\n    cmd: true\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dvc.yaml"]  # no temporary file left beside it


def test_generation_is_deterministic(dags):
    params = ROOT / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    shuffled = {**dags["params"], "jobs": list(reversed(dags["params"]["jobs"]))}
    assert render_dvc_yaml(shuffled, raw) == render_dvc_yaml(dags["params"], raw)


def test_a_rule_that_fits_no_stage_layout_fails_loudly():
    """A rule whose jobs cannot be one stage group (a wildcard varying outside the axes) is an error
    naming the stage, not a silently wrong dvc.yaml."""
    job = {"rule": "sample_grid", "output": [], "output_names": [], "input": [], "input_names": []}
    dag = {
        "rules": ["sample_grid"],
        "patterns": {"sample_grid": []},
        "input_patterns": {"sample_grid": {}},
        "jobs": [
            {
                **job,
                "wildcards": {"objective": "ar", "size": "base", "variant": "alpha1.0", "decoder": "phase1"},
                "output": ["a.pdf"],
                "output_names": ["pdf"],
            },
            {
                **job,
                "wildcards": {"objective": "ar", "size": "base", "variant": "alpha0.5", "decoder": "phase1"},
                "output": ["b.pdf"],
                "output_names": ["pdf"],
            },
        ],
    }
    dag["patterns"]["sample_grid"] = ["{objective}_{size}_{variant}_{decoder}.pdf"]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(ValueError, match="sample_grid"):
        render_dvc_yaml(dag, raw)


@pytest.mark.parametrize("params_name", IDS)
def test_each_module_is_an_input_of_exactly_the_jobs_whose_rule_declares_it(params_name, views):
    """Snakemake reruns a job when an input is newer than its outputs: appending a comment to a module
    plans exactly the jobs whose rule declares the module (and what reads their outputs), in the DAG of
    every params file; DVC's stages list the same files as deps (test_generated_dvc_yaml_agrees_...)."""
    from seqgan.runs import DECLARATIONS

    _, dag = views[params_name]
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "seqgan").rglob("*.py"))
    for module in modules:
        reading = {job.rule for job in dag.jobs if module in job.input}
        declared = {job.rule for job in dag.jobs if job.rule != "all" and module in DECLARATIONS[job.rule].modules}
        assert reading == declared, module
    fid = {job.rule for job in dag.jobs if "seqgan/evaluate/fid.py" in job.input}
    assert fid and fid.isdisjoint(
        {"train_semantic", "tokenizer_phase1", "tokenizer_phase2", "encode_tokens", "train_ar", "train_nar"}
    )
    for module in (m for m in modules if m.startswith("seqgan/sample/")):
        assert {job.rule for job in dag.jobs if module in job.input}.isdisjoint({"train_ar", "train_nar"}), module
