# Tables and figures computed from recorded artefacts (params: whatever each table reports on).


rule model_sizes:
    """Parameter counts of every network beside the paper's (meta device: no data, no training)."""
    input:
        code=code_inputs("model_sizes"),
    output:
        csv=f"{RESULTS_DIR}/tables/model_sizes.csv",
        md=report(f"{RESULTS_DIR}/tables/model_sizes.md", caption="../report/model_sizes.rst", category="Tables"),
    params:
        run=run_params("model_sizes"),
    benchmark:
        "logs/benchmarks/model_sizes.tsv",
    log:
        "logs/model_sizes.log",
    shell:
        "{SEQGAN} model-sizes --params {PARAMS_FILE} --out {output.csv} > {log} 2>&1"


FIG2_SIZE = config["transformer"]["models"][0]
FIG2_RUNS = [(v, o) for o in config["transformer"]["objectives"] for v in PHASE1_VARIANTS]


def fig2_inputs(wildcards=None):
    files = []
    for variant, objective in FIG2_RUNS:
        files += [
            f"{RESULTS_DIR}/curves/transformer/{objective}/{FIG2_SIZE}/{variant}/seed{RUN_SEED}/curve.csv",
            f"{MODELS_DIR}/transformer/{objective}/{FIG2_SIZE}/{variant}/seed{RUN_SEED}/model.json",
            f"{RESULTS_DIR}/metrics/tokenizer/phase1/{variant}/seed{RUN_SEED}.json",
        ]
    return files


def fig2_run_args(wildcards=None, input=None):
    return " ".join(
        f"--run {v} {o} {' '.join(fig2_inputs()[3 * i: 3 * i + 3])}" for i, (v, o) in enumerate(FIG2_RUNS)
    )


rule fig2_val_loss:
    """Supplement Fig. 2: validation loss vs iteration per alpha (and the control), with evidence."""
    input:
        runs=fig2_inputs,
        code=code_inputs("fig2_val_loss"),
    output:
        pdf=f"{RESULTS_DIR}/fig2_val_loss.pdf",
        png=report(f"{RESULTS_DIR}/fig2_val_loss.png", caption="../report/fig2.rst", category="Figures"),
        csv=f"{RESULTS_DIR}/fig2_val_loss.csv",
    params:
        run=run_params("fig2_val_loss"),
        runs=fig2_run_args,
    benchmark:
        "logs/benchmarks/fig2_val_loss.tsv",
    log:
        "logs/fig2_val_loss.log",
    shell:
        "{SEQGAN} fig2 --params {PARAMS_FILE} {params.runs} --out {output.pdf} > {log} 2>&1"
