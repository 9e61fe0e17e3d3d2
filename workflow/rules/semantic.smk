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


rule train_judge:
    """The judge: a residual classifier no tokenizer optimises, the network of the evaluation metrics."""
    input:
        train=split_files("train")["manifest"],
        val=split_files("val")["manifest"],
        code=code_inputs("train_judge"),
    output:
        weights=JUDGE_WEIGHTS,
        sidecar=JUDGE_WEIGHTS.replace(".safetensors", ".json"),
        metrics=f"{RESULTS_DIR}/metrics/judge.json",
        curve=f"{RESULTS_DIR}/curves/judge/val.csv",
    params:
        run=run_params("train_judge"),
    threads: 1
    priority: 10  # needed only by the evaluation rules
    resources:
        gpu=1,
    benchmark:
        "logs/benchmarks/train_judge.tsv",
    log:
        "logs/train_judge.log",
    shell:
        "seqgan train-judge --params params.yaml --data $(dirname $(dirname {input.train})) --out {output.weights} "
        "--metrics {output.metrics} --log-dir $(dirname {output.curve}) --threads {threads} > {log} 2>&1"
