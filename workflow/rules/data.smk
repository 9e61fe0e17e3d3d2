# Dataset preparation: the embedded synthetic set, or an image folder / LSUN LMDB (params: data).


rule prepare_data:
    """One prepared split (uint8 pixels, labels, manifest; skip reports for real images)."""
    input:
        code=code_inputs("prepare_data"),
    output:
        **split_files("{split}"),
    params:
        run=run_params("prepare_data"),
    wildcard_constraints:
        split="train|val",
    benchmark:
        "logs/benchmarks/prepare_data/{split}.tsv",
    log:
        "logs/prepare_data/{split}.log",
    shell:
        "{SEQGAN} prepare-data --params {PARAMS_FILE} --split {wildcards.split} "
        "--out {DATA_DIR}/{wildcards.split} > {log} 2>&1"
