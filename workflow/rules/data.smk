# Dataset preparation: the embedded synthetic set, or an image folder / LSUN LMDB (params: data).


rule prepare_data:
    """One prepared split (uint8 pixels, labels, manifest; skip reports for real images)."""
    input:
        code=command_code("prepare-data"),
    output:
        **split_files("{split}"),
    params:
        data=config["data"],
    wildcard_constraints:
        split="train|val",
    benchmark:
        "logs/benchmarks/prepare_data/{split}.tsv",
    log:
        "logs/prepare_data/{split}.log",
    shell:
        "{SEQGAN} prepare-data --params {PARAMS_FILE} --split {wildcards.split} "
        "--out {DATA_DIR}/{wildcards.split} > {log} 2>&1"
