# SeQ-GAN tokenizers: phase 1 per semantic ratio alpha (+ a no-perceptual-loss control), phase 2
# (frozen encoder and codebook, attention decoder), reconstruction metrics and token encoding
# (params: tokenizer, evaluation.batch_size).

rule tokenizer_phase1:
    """Encoder + codebook + conv-only decoder with L1, VQ, entropy, L_per^alpha and GAN terms."""
    input:
        train=split_files("train")["manifest"],
        val=split_files("val")["manifest"],  # the validation curve (the plateau rule's evidence)
        semantic=phase1_semantic_input,
        code=code_inputs("tokenizer_phase1"),
    output:
        weights=f"{MODELS_DIR}/tokenizer/phase1/{{variant}}/seed{{seed}}/tokenizer.safetensors",
        sidecar=f"{MODELS_DIR}/tokenizer/phase1/{{variant}}/seed{{seed}}/tokenizer.json",
        curve=f"{RESULTS_DIR}/curves/tokenizer/phase1/{{variant}}/seed{{seed}}/train.csv",
        val_curve=f"{RESULTS_DIR}/curves/tokenizer/phase1/{{variant}}/seed{{seed}}/val.csv",
    params:
        run=run_params("tokenizer_phase1"),
        semantic_arg=phase1_semantic_arg,
    wildcard_constraints:
        variant=TOKENIZER_VARIANT_PATTERN,
        seed=SEED_PATTERN,
    threads: 1
    priority: 20  # the longest jobs: start them before anything that can wait
    resources:
        gpu=TRAIN_GPUS,
    benchmark:
        "logs/benchmarks/tokenizer_phase1/{variant}/seed{seed}.tsv",
    log:
        "logs/tokenizer_phase1/{variant}/seed{seed}.log",
    shell:
        "seqgan_train train-tokenizer --params params.yaml --phase 1 --variant {wildcards.variant} "
        "--seed {wildcards.seed} --data $(dirname $(dirname {input.train})) {params.semantic_arg} --out {output.weights} "
        "--log-dir $(dirname {output.curve}) --threads {threads} > {log} 2>&1"


rule tokenizer_phase2:
    """Decoder with block-regional + dilated attention finetuned on the frozen phase-1 tokens."""
    input:
        train=split_files("train")["manifest"],
        val=split_files("val")["manifest"],
        phase1=lambda wildcards: phase2_source(wildcards.seed),
        semantic=semantic_input,
        code=code_inputs("tokenizer_phase2"),
    output:
        weights=f"{MODELS_DIR}/tokenizer/phase2/seed{{seed}}/tokenizer.safetensors",
        sidecar=f"{MODELS_DIR}/tokenizer/phase2/seed{{seed}}/tokenizer.json",
        curve=f"{RESULTS_DIR}/curves/tokenizer/phase2/seed{{seed}}/train.csv",
        val_curve=f"{RESULTS_DIR}/curves/tokenizer/phase2/seed{{seed}}/val.csv",
    params:
        run=run_params("tokenizer_phase2"),
        semantic_arg=semantic_arg,
    wildcard_constraints:
        seed=SEED_PATTERN,
    threads: 1
    resources:
        gpu=TRAIN_GPUS,
    benchmark:
        "logs/benchmarks/tokenizer_phase2/seed{seed}.tsv",
    log:
        "logs/tokenizer_phase2/seed{seed}.log",
    shell:
        "seqgan_train train-tokenizer --params params.yaml --phase 2 --variant phase2 --seed {wildcards.seed} "
        "--data $(dirname $(dirname {input.train})) "
        "{params.semantic_arg} --init {input.phase1} --out {output.weights} "
        "--log-dir $(dirname {output.curve}) --threads {threads} > {log} 2>&1"


rule fid_reference:
    """FID reference statistics of a prepared split, kept as a pipeline output."""
    input:
        split=split_files("{split}")["manifest"],
        semantic=fid_semantic_input,
        judge=judge_input,
        code=code_inputs("fid_reference"),
    output:
        stats=f"{RESULTS_DIR}/fid_refs/{{split}}.npz",
        meta=f"{RESULTS_DIR}/fid_refs/{{split}}.npz.json",
    params:
        run=run_params("fid_reference"),
        semantic_arg=fid_semantic_arg,
        judge_arg=judge_arg,
    wildcard_constraints:
        split="train|val",
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/fid_reference/{split}.tsv",
    log:
        "logs/fid_reference/{split}.log",
    shell:
        "seqgan fid-reference --params params.yaml --split-dir $(dirname {input.split}) "
        "{params.semantic_arg} {params.judge_arg} --out {output.stats} --threads {threads} > {log} 2>&1"


rule eval_tokenizer:
    """rFID, PSNR, perceptual distance, codebook usage and classifier accuracy on reconstructions."""
    input:
        tokenizer=f"{MODELS_DIR}/tokenizer/{{tokenizer}}/tokenizer.safetensors",
        split=split_files("val")["manifest"],
        reference=f"{RESULTS_DIR}/fid_refs/val.npz",
        semantic=semantic_input,
        judge=judge_input,
        code=code_inputs("eval_tokenizer"),
    output:
        f"{RESULTS_DIR}/metrics/tokenizer/{{tokenizer}}.json",
    params:
        run=run_params("eval_tokenizer"),
        semantic_arg=semantic_arg,
        judge_arg=judge_arg,
    wildcard_constraints:
        tokenizer=TOKENIZER_PATTERN,
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/eval_tokenizer/{tokenizer}.tsv",
    log:
        "logs/eval_tokenizer/{tokenizer}.log",
    shell:
        "seqgan eval-tokenizer --params params.yaml --tokenizer {input.tokenizer} "
        "--split-dir $(dirname {input.split}) --reference {input.reference} {params.semantic_arg} "
        "{params.judge_arg} --out {output} --threads {threads} > {log} 2>&1"


rule encode_tokens:
    """Token ids of a split with a phase-1 tokenizer (transformers train on these, not on images)."""
    input:
        tokenizer=f"{MODELS_DIR}/tokenizer/phase1/{{variant}}/seed{{seed}}/tokenizer.safetensors",
        split=split_files("{split}")["manifest"],
        code=code_inputs("encode_tokens"),
    output:
        **token_files("{variant}", "{seed}", "{split}"),
    params:
        run=run_params("encode_tokens"),
    wildcard_constraints:
        variant=VARIANT_PATTERN,
        seed=SEED_PATTERN,
        split="train|val",
    threads: 1
    priority: 15  # seconds, and a transformer waits for it; after the long tokenizer jobs
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/encode_tokens/{variant}/seed{seed}/{split}.tsv",
    log:
        "logs/encode_tokens/{variant}/seed{seed}/{split}.log",
    shell:
        "seqgan encode-tokens --params params.yaml --tokenizer {input.tokenizer} "
        "--split-dir $(dirname {input.split}) --out $(dirname {output.manifest}) "
        "--threads {threads} > {log} 2>&1"
