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
        "seqgan prepare-data --params params.yaml --split {wildcards.split} "
        "--out $(dirname {output.manifest}) > {log} 2>&1"
