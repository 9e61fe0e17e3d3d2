# Main-paper figures computed from trained models and recorded metrics: Fig. 4 (teacher-forced AR
# prediction per alpha, supplement Fig. 3) and Fig. 6b (rFID and generation FID against alpha)
# (params: evaluation.visualization_images, evaluation.batch_size, evaluation.experiment_seeds,
# evaluation.sampling_seeds, transformer.models[0], transformer.objectives, tokenizer.alphas).

FIGURE_SIZE = config["transformer"]["models"][0]


rule fig3_visualization:
    """Input, reconstruction and teacher-forced AR prediction per tokenizer variant, with the top-1
    token accuracy over the whole validation split beside the shown images."""
    input:
        val=split_files("val")["manifest"],
        split=list(split_files("val").values()),
        tokenizers=[tok for _, tok, _ in fig3_runs()],
        transformers=[tr for _, _, tr in fig3_runs()],
        sidecars=[tr.replace(".safetensors", ".json") for _, _, tr in fig3_runs()],
        code=code_inputs("fig3_visualization"),
    output:
        pdf=f"{RESULTS_DIR}/fig3_visualization.pdf",
        png=report(f"{RESULTS_DIR}/fig3_visualization.png", caption="../report/fig3.rst", category="Figures"),
        csv=f"{RESULTS_DIR}/fig3_visualization.csv",
    params:
        run=run_params("fig3_visualization"),
        variants=" ".join(f"--variant {v} {tok} {tr}" for v, tok, tr in fig3_runs()),
    threads: 1
    resources:
        gpu=GPU_JOB,  # a network on the GPU (when there is one): counts against the gpu limit
    benchmark:
        "logs/benchmarks/fig3_visualization.tsv",
    log:
        "logs/fig3_visualization.log",
    shell:
        "seqgan fig3 --params params.yaml --split-dir $(dirname {input.val}) {params.variants} "
        "--out {output.pdf} --threads {threads} > {log} 2>&1"


FIG6B_RFID = [
    (v, s, f"{RESULTS_DIR}/metrics/tokenizer/phase1/{v}/seed{s}.json") for v in PHASE1_VARIANTS for s in EXPERIMENT_SEEDS
]
# Only the primary run's (run.seed) transformers are sampled: generation FID varies over sampling seeds.
FIG6B_GENERATION = [
    (o, v, n, f"{RESULTS_DIR}/metrics/generation/{o}/{FIGURE_SIZE}/{v}/phase1/seed{n}.json")
    for o in config["transformer"]["objectives"]
    for v in PHASE1_VARIANTS
    for n in config["evaluation"]["sampling_seeds"]
]


rule fig6b_alpha_sweep:
    """rFID (every experiment seed) and generation FID (every sampling seed) against alpha, the
    control as a separate line; axis labels name the FID feature network recorded in the files."""
    input:
        rfid=[f for _, _, f in FIG6B_RFID],
        generation=[f for _, _, _, f in FIG6B_GENERATION],
        code=code_inputs("fig6b_alpha_sweep"),
    output:
        pdf=f"{RESULTS_DIR}/fig6b_alpha_sweep.pdf",
        png=report(f"{RESULTS_DIR}/fig6b_alpha_sweep.png", caption="../report/fig6b.rst", category="Figures"),
        csv=f"{RESULTS_DIR}/fig6b_alpha_sweep.csv",
    params:
        run=run_params("fig6b_alpha_sweep"),
        rfid=" ".join(f"--rfid {v} {s} {f}" for v, s, f in FIG6B_RFID),
        generation=" ".join(f"--generation {o} {v} {n} {f}" for o, v, n, f in FIG6B_GENERATION),
    benchmark:
        "logs/benchmarks/fig6b_alpha_sweep.tsv",
    log:
        "logs/fig6b_alpha_sweep.log",
    shell:
        "seqgan fig6b --params params.yaml {params.rfid} {params.generation} --out {output.pdf} > {log} 2>&1"


DEFAULT_TARGETS += [f"{RESULTS_DIR}/fig6b_alpha_sweep.pdf"]
# The teacher-forced visualization needs AR transformers; without them it is no default target.
if "ar" in config["transformer"]["objectives"]:
    DEFAULT_TARGETS += [f"{RESULTS_DIR}/fig3_visualization.pdf"]
