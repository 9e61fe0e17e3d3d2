# Tables and figures computed from recorded artefacts (params: whatever each table reports on).


rule model_sizes:
    """Parameter counts of every network beside the paper's (meta device: no data, no training)."""
    input:
        code=package_sources("nets", "report"),
    output:
        csv=f"{RESULTS_DIR}/tables/model_sizes.csv",
        md=f"{RESULTS_DIR}/tables/model_sizes.md",
    params:
        data=config["data"]["resolution"],
        tokenizer=config["tokenizer"]["architecture"],
        attention=config["tokenizer"]["phase2"]["attention"],
        gan=config["tokenizer"]["gan"]["disc_channels"],
        transformer=[config["transformer"]["sizes"], config["transformer"]["num_classes"], config["transformer"]["conditional"]],
    log:
        "logs/model_sizes.log",
    shell:
        "{SEQGAN} model-sizes --params {PARAMS_FILE} --out {output.csv} > {log} 2>&1"
