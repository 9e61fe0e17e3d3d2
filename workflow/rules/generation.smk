# Generated samples measured and shown: generation FID / IS / the semantic classifier's view, sample
# grids (supplement Figs. 4-10) and supplement Fig. 1, phase-1 vs phase-2 decoder on the same tokens
# (params: evaluation, transformer.models / objectives, tokenizer.phase2.from_alpha).

GEN_SIZE = config["transformer"]["models"][0]
GEN_OBJECTIVES = config["transformer"]["objectives"]
SAMPLING_SEEDS = config["evaluation"]["sampling_seeds"]
GEN_REFERENCE = config["evaluation"]["generation_reference"]
PHASE2_VARIANT = f"alpha{config['tokenizer']['phase2']['from_alpha']}"
PHASE2_WEIGHTS = phase2_weights(RUN_SEED)
# Supplement Fig. 1 decodes AR samples; a configuration without AR (FFHQ) uses its first objective.
FIG1_OBJECTIVE = "ar" if "ar" in GEN_OBJECTIVES else GEN_OBJECTIVES[0]
SAMPLE_WILDCARDS = dict(
    objective="ar|nar",
    size="base|large",
    variant=VARIANT_PATTERN,
    decoder="phase1|phase2",
)


rule eval_samples:
    """Generation FID (evaluation.fid_network), IS (class-conditional + Inception only) and the semantic
    classifier's view of the samples beside the same numbers on real images of the reference split."""
    input:
        samples=sample_manifest("{objective}", "{size}", "{variant}", "{decoder}", "{seed}"),
        reference=f"{RESULTS_DIR}/fid_refs/{GEN_REFERENCE}.npz",
        split=split_files(GEN_REFERENCE)["manifest"],
        semantic=fid_semantic_input,
        judge=judge_input,
        code=code_inputs("eval_samples"),
    output:
        f"{RESULTS_DIR}/metrics/generation/{{objective}}/{{size}}/{{variant}}/{{decoder}}/seed{{seed}}.json",
    params:
        run=run_params("eval_samples"),
        semantic_arg=fid_semantic_arg,
        judge_arg=judge_arg,
    wildcard_constraints:
        **SAMPLE_WILDCARDS,
        seed=r"\d+",
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/eval_samples/{objective}/{size}/{variant}/{decoder}/seed{seed}.tsv",
    log:
        "logs/eval_samples/{objective}/{size}/{variant}/{decoder}/seed{seed}.log",
    shell:
        "seqgan eval-samples --params params.yaml --samples $(dirname {input.samples}) "
        "--objective {wildcards.objective} --size {wildcards.size} --variant {wildcards.variant} "
        "--decoder {wildcards.decoder} --seed {wildcards.seed} --reference {input.reference} "
        "--reference-split-dir $(dirname {input.split}) {params.semantic_arg} {params.judge_arg} --out {output} "
        "--threads {threads} > {log} 2>&1"


rule sample_grid:
    """Uncurated grid of the samples of the first sampling seed (one row per listed class if conditional)."""
    input:
        samples=lambda wc: sample_manifest(wc.objective, wc.size, wc.variant, wc.decoder, SAMPLING_SEEDS[0]),
        names=split_files("train")["manifest"],
        code=code_inputs("sample_grid"),
    output:
        pdf=f"{RESULTS_DIR}/sample_grids/{{objective}}_{{size}}_{{variant}}_{{decoder}}.pdf",
        png=report(
            f"{RESULTS_DIR}/sample_grids/{{objective}}_{{size}}_{{variant}}_{{decoder}}.png",
            caption="../report/sample_grid.rst",
            category="Samples",
            labels={"objective": "{objective}", "tokenizer": "{variant}", "decoder": "{decoder}"},
        ),
    params:
        run=run_params("sample_grid"),
    wildcard_constraints:
        **SAMPLE_WILDCARDS,
    benchmark:
        "logs/benchmarks/sample_grid/{objective}_{size}_{variant}_{decoder}.tsv",
    log:
        "logs/sample_grid/{objective}_{size}_{variant}_{decoder}.log",
    shell:
        "seqgan sample-grid --params params.yaml --samples $(dirname {input.samples}) "
        "--objective {wildcards.objective} --size {wildcards.size} --variant {wildcards.variant} "
        "--decoder {wildcards.decoder} --class-names-from {input.names} --out {output.pdf} > {log} 2>&1"


rule fig1_phase2_decoder:
    """Supplement Fig. 1: sampled and validation token grids decoded by the phase-1 and phase-2 decoders."""
    input:
        samples=sample_manifest(FIG1_OBJECTIVE, GEN_SIZE, PHASE2_VARIANT, "phase1", SAMPLING_SEEDS[0]),
        phase1=phase2_source(RUN_SEED),
        phase2=PHASE2_WEIGHTS,
        val=split_files("val")["manifest"],
        code=code_inputs("fig1_phase2_decoder"),
    output:
        pdf=f"{RESULTS_DIR}/fig1_phase2_decoder.pdf",
        png=report(f"{RESULTS_DIR}/fig1_phase2_decoder.png", caption="../report/fig1.rst", category="Figures"),
        csv=f"{RESULTS_DIR}/fig1_phase2_decoder.csv",
    params:
        run=run_params("fig1_phase2_decoder"),
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/fig1_phase2_decoder.tsv",
    log:
        "logs/fig1_phase2_decoder.log",
    shell:
        "seqgan fig1 --params params.yaml --samples $(dirname {input.samples}) --phase1 {input.phase1} "
        "--phase2 {input.phase2} --val-dir $(dirname {input.val}) --out {output.pdf} "
        "--threads {threads} > {log} 2>&1"


DEFAULT_TARGETS += [
    *[
        f"{RESULTS_DIR}/metrics/generation/{o}/{GEN_SIZE}/{v}/phase1/seed{s}.json"
        for o in GEN_OBJECTIVES
        for v in PHASE1_VARIANTS
        for s in SAMPLING_SEEDS
    ],
    *[f"{RESULTS_DIR}/metrics/generation/{o}/{GEN_SIZE}/{PHASE2_VARIANT}/phase2/seed{s}.json" for o in GEN_OBJECTIVES for s in SAMPLING_SEEDS],
    f"{RESULTS_DIR}/fig1_phase2_decoder.pdf",
    *[f"{RESULTS_DIR}/sample_grids/{o}_{GEN_SIZE}_{PHASE2_VARIANT}_{d}.pdf" for o in GEN_OBJECTIVES for d in ("phase1", "phase2")],
]
