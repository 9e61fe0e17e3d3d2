# Generative transformers on the phase-1 tokens: AR (causal) and NAR (MaskGIT) per tokenizer variant,
# each recording its validation-loss curve (supplement Fig. 2) (params: transformer).

TRANSFORMER_SHARED = {k: config["transformer"][k] for k in ("conditional", "num_classes", "sizes", "optimizer", "eval_every", "val_batches", "checkpoint_every")}


def transformer_outputs(objective):
    prefix = f"{{size}}/{{variant}}"
    return {
        "weights": f"{MODELS_DIR}/transformer/{objective}/{prefix}/model.safetensors",
        "sidecar": f"{MODELS_DIR}/transformer/{objective}/{prefix}/model.json",
        "curve": f"{RESULTS_DIR}/curves/transformer/{objective}/{prefix}/curve.csv",
    }


for _objective in ("ar", "nar"):

    rule:
        name:
            f"train_{_objective}"
        input:
            train=token_files("{variant}", "train")["manifest"],
            val=token_files("{variant}", "val")["manifest"],
            code=package_sources("nets", "train"),
        output:
            **transformer_outputs(_objective),
        params:
            shared=TRANSFORMER_SHARED,
            objective=config["transformer"][_objective],
            seed=config["run"]["seed"],
            name=_objective,
        wildcard_constraints:
            variant=VARIANT_PATTERN,
            size="base|large",
        threads: 1
        log:
            f"logs/train_{_objective}/{{size}}/{{variant}}.log",
        shell:
            "{SEQGAN} train-transformer --params {PARAMS_FILE} --objective {params.name} --size {wildcards.size} "
            "--tokens {TOKENS_DIR}/{wildcards.variant} --out {output.weights} "
            f"--log-dir {RESULTS_DIR}/curves/transformer/{_objective}/{{wildcards.size}}/{{wildcards.variant}} "
            "--threads {threads} > {log} 2>&1"
