# Generative transformers on the phase-1 tokens: AR (causal) and NAR (MaskGIT) per tokenizer variant,
# each recording its validation-loss curve (supplement Fig. 2) (params: transformer).

rule train_ar:
    """Causal transformer, next-token cross-entropy; validation loss every transformer.eval_every steps."""
    input:
        train=token_files("{variant}", "{seed}", "train")["manifest"],
        val=token_files("{variant}", "{seed}", "val")["manifest"],
        code=code_inputs("train_ar"),
    output:
        **transformer_paths("ar"),
    params:
        run=run_params("train_ar"),
        name="ar",
    wildcard_constraints:
        variant=VARIANT_PATTERN,
        size="base|large",
        seed=SEED_PATTERN,
    threads: 1
    priority: 10  # after the tokenizers, before metrics and figures
    resources:
        gpu=TRAIN_GPUS,
    benchmark:
        "logs/benchmarks/train_ar/{size}/{variant}/seed{seed}.tsv",
    log:
        "logs/train_ar/{size}/{variant}/seed{seed}.log",
    shell:
        "seqgan_train train-transformer --params params.yaml --objective {params.name} --size {wildcards.size} "
        "--seed {wildcards.seed} --tokens $(dirname $(dirname {input.train})) "
        "--out {output.weights} --log-dir $(dirname {output.curve}) --threads {threads} > {log} 2>&1"


use rule train_ar as train_nar with:
    input:
        train=token_files("{variant}", "{seed}", "train")["manifest"],
        val=token_files("{variant}", "{seed}", "val")["manifest"],
        code=code_inputs("train_nar"),
    output:
        **transformer_paths("nar"),
    params:
        run=run_params("train_nar"),
        name="nar",
    benchmark:
        "logs/benchmarks/train_nar/{size}/{variant}/seed{seed}.tsv",
    log:
        "logs/train_nar/{size}/{variant}/seed{seed}.log",


rule sample:
    """evaluation.num_samples generated images (PNG folder for clean-fid) and their token grids."""
    input:
        transformer=f"{MODELS_DIR}/transformer/{{objective}}/{{size}}/{{variant}}/seed{RUN_SEED}/model.safetensors",
        tokenizer=sample_decoder,
        code=code_inputs("sample"),
    output:
        manifest=f"{RESULTS_DIR}/samples/{{objective}}/{{size}}/{{variant}}/{{decoder}}/seed{{seed}}/manifest.json",
    params:
        run=run_params("sample"),
    wildcard_constraints:
        objective="ar|nar",
        size="base|large",
        variant=VARIANT_PATTERN,
        decoder="phase1|phase2",
        seed=r"\d+",
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/sample/{objective}/{size}/{variant}/{decoder}/seed{seed}.tsv",
    log:
        "logs/sample/{objective}/{size}/{variant}/{decoder}/seed{seed}.log",
    shell:
        "seqgan sample --params params.yaml --objective {wildcards.objective} "
        "--transformer {input.transformer} --tokenizer {input.tokenizer} --seed {wildcards.seed} "
        "--out $(dirname {output.manifest}) --threads {threads} > {log} 2>&1"
