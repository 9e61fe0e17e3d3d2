# SeQ-GAN reproduction workflow. All values come from params.yaml (validated below, before any job);
# the rules live in workflow/rules/, one file per stage.
from pathlib import Path

import yaml
from snakemake.utils import min_version, validate

from seqgan.config import validate_params

min_version("9.0")

configfile: "params.yaml"

if config != yaml.safe_load(Path("params.yaml").read_text()):
    raise ValueError(
        "snakemake --config/--configfile overrides are not supported: edit params.yaml instead "
        "(the `seqgan` commands and DVC read params.yaml, so an override would desynchronise them)"
    )
# The package's typed loader first: it names the key path and value of every problem in one message.
PARAMS = validate_params(config, "params.yaml")
validate(config, "workflow/schemas/params.schema.yaml")

# Before any job (not for a dry run): what the planned jobs need of a paper configuration's data
# folders, pretrained weights, GPUs and disk is checked at once, and nothing starts when one is
# missing (`seqgan preflight TARGET...` by hand).
onstart:
    from seqgan.preflight import workflow_preflight

    plugin = workflow.executor_plugin  # a cluster executor runs the jobs elsewhere: CUDA is theirs
    workflow_preflight(
        PARAMS,
        root=Path.cwd(),
        rules={job.rule.name for job in workflow.dag.needrun_jobs()},
        cluster=plugin is not None and plugin.common_settings.non_local_exec,
    )


# `snakemake --report results/report.html`: every figure and table with its caption (workflow/report/).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/semantic.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/transformer.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/generation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"


# Seconds of CPU each: on a cluster they run where Snakemake runs instead of waiting in a queue.
localrules:
    all,
    model_sizes,
    fig2_val_loss,
    fig6b_alpha_sweep,
    sample_grid,
    paper_table,
    hparam_audit,
    claims,


# Before Snakemake plans: what DVC linked or restored since Snakemake last ran is aligned with
# Snakemake's view again, for the stages `dvc status` reports up to date (workflow/rules/common.smk).
if workflow.is_main_process:
    realign_dvc_outputs()


# After a successful run: the outputs as Snakemake now knows them (what realign compares with).
onsuccess:
    if not workflow.dryrun:
        from seqgan.dvc_realign import record_state

        record_state(Path.cwd())


# Every figure, table and metric of the params in use (the rule files above add theirs).
DEFAULT_TARGETS += [
    f"{RESULTS_DIR}/fig2_val_loss.pdf",
    *[f"{RESULTS_DIR}/metrics/tokenizer/phase1/{v}/seed{s}.json" for v in TOKENIZER_VARIANTS for s in EXPERIMENT_SEEDS],
    *[f"{RESULTS_DIR}/metrics/tokenizer/phase2/seed{s}.json" for s in EXPERIMENT_SEEDS],
]


rule all:
    input:
        DEFAULT_TARGETS,
