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
        "seqgan model-sizes --params params.yaml --out {output.csv} > {log} 2>&1"


FIG2_SIZE = config["transformer"]["models"][0]
FIG2_RUNS = [(v, o) for o in config["transformer"]["objectives"] for v in PHASE1_VARIANTS]


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
        "seqgan fig2 --params params.yaml {params.runs} --out {output.pdf} > {log} 2>&1"
