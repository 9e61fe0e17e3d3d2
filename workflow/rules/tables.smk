# Reproduced result tables (main Tables 1-6 and Fig. 8b, paper value / reproduced value / difference
# with the run behind each number), the hyper-parameter audit (supplement Tables 3-4 beside the params
# in use) and results/claims.md (the paper's four claims with evidence and verdicts). Which artefacts
# a table or the claims read is decided by seqgan/report from the params -- the same functions the
# commands use -- so each rule's inputs are exactly the files it reads
# (params: the hashes of the params sections behind every reported run, the seeds).
from seqgan.report.artefacts import ArtefactLayout
from seqgan.report.claims import claims_inputs
from seqgan.report.pilot import pilot_inputs
from seqgan.report.tables import TABLE_NAMES, table_inputs

REPORT_LAYOUT = ArtefactLayout(Path(RESULTS_DIR), Path(MODELS_DIR))


rule paper_table:
    """One paper table (or Fig. 8b) beside the reproduced numbers; "not run" cells say why."""
    input:
        runs=lambda wc: table_inputs(PARAMS, wc.table, REPORT_LAYOUT),
        code=code_inputs("paper_table"),
    output:
        csv=report(
            f"{RESULTS_DIR}/tables/{{table}}.csv",
            caption="../report/paper_table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        md=f"{RESULTS_DIR}/tables/{{table}}.md",
    params:
        run=run_params("paper_table"),
    wildcard_constraints:
        table="|".join(TABLE_NAMES),
    benchmark:
        "logs/benchmarks/paper_table/{table}.tsv",
    log:
        "logs/paper_table/{table}.log",
    shell:
        "seqgan tables --params params.yaml --table {wildcards.table} --results-dir results "
        "--models-dir models --out-dir $(dirname {output.csv}) > {log} 2>&1"


rule hparam_audit:
    """Supplement Tables 3 and 4 beside the params keys in use, every difference flagged."""
    input:
        code=code_inputs("hparam_audit"),
    output:
        csv=report(f"{RESULTS_DIR}/tables/hparam_audit.csv", caption="../report/hparam_audit.rst", category="Tables"),
        md=f"{RESULTS_DIR}/tables/hparam_audit.md",
    params:
        run=run_params("hparam_audit"),
    benchmark:
        "logs/benchmarks/hparam_audit.tsv",
    log:
        "logs/hparam_audit.log",
    shell:
        "seqgan hparam-audit --params params.yaml --out {output.csv} > {log} 2>&1"


rule claims:
    """results/claims.md: each claim's evidence (numbers and files) and a verdict derived by a stated rule."""
    input:
        runs=claims_inputs(PARAMS, REPORT_LAYOUT),
        code=code_inputs("claims"),
    output:
        report(f"{RESULTS_DIR}/claims.md", caption="../report/claims.rst", category="Claims"),
    params:
        run=run_params("claims"),
    benchmark:
        "logs/benchmarks/claims.tsv",
    log:
        "logs/claims.log",
    shell:
        "seqgan claims --params params.yaml --results-dir results --models-dir models "
        "--out {output} > {log} 2>&1"


rule power_pilot:
    """Claim 2's paired seed-to-seed sd on evaluation.pilot_seeds and the confirmatory seeds it calls for.
    Not part of the default target: run it before fixing evaluation.confirmatory_seeds; never a result."""
    input:
        runs=pilot_inputs(PARAMS, REPORT_LAYOUT),
        code=code_inputs("power_pilot"),
    output:
        md=f"{RESULTS_DIR}/pilot/power.md",
        json=f"{RESULTS_DIR}/pilot/power.json",
    params:
        run=run_params("power_pilot"),
    benchmark:
        "logs/benchmarks/power_pilot.tsv",
    log:
        "logs/power_pilot.log",
    shell:
        "seqgan power-pilot --params params.yaml --results-dir results --models-dir models "
        "--out {output.md} > {log} 2>&1"


DEFAULT_TARGETS += [
    *[f"{RESULTS_DIR}/tables/{name}.md" for name in TABLE_NAMES],
    f"{RESULTS_DIR}/tables/hparam_audit.md",
    f"{RESULTS_DIR}/claims.md",
]
