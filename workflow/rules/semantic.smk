# The embedded default's semantic network: perceptual backbone and FID feature network
# (params: semantic; only when semantic.backbone = embedded).


rule train_semantic:
    """Small VGG-style classifier with five feature taps; records its validation accuracy."""
    input:
        train=split_files("train")["manifest"],
        val=split_files("val")["manifest"],
        code=code_inputs("train_semantic"),
    output:
        weights=SEMANTIC_WEIGHTS,
        sidecar=SEMANTIC_WEIGHTS.replace(".safetensors", ".json"),
        metrics=f"{RESULTS_DIR}/metrics/semantic.json",
        curve=f"{RESULTS_DIR}/curves/semantic/val.csv",
    params:
        run=run_params("train_semantic"),
    # One thread like every training job: Snakemake runs the control tokenizer beside it, and the
    # thread count is part of what a CPU run's float rounding depends on.
    threads: 1
    # First on the critical path: every alpha tokenizer waits for it.
    priority: 30
    resources:
        gpu=1,  # one process always: a 10-class classifier gains nothing from DDP (none implemented)
    benchmark:
        "logs/benchmarks/train_semantic.tsv",
    log:
        "logs/train_semantic.log",
    shell:
        "seqgan train-semantic --params params.yaml --data $(dirname $(dirname {input.train})) --out {output.weights} "
        "--metrics {output.metrics} --log-dir $(dirname {output.curve}) --threads {threads} > {log} 2>&1"

