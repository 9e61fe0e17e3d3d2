"""What makes each run: one declaration per kind of run, the single source of every rebuild decision.

A declaration names, for one workflow rule (a kind of run: the semantic network, a phase-1
tokenizer, an AR transformer, a sample set, a figure, ...):

* ``keys``: the params.yaml key paths whose values shape its outputs. ``{size}`` / ``{objective}``
  are filled in from the job (``transformer.sizes.{size}``: the ``base`` model does not depend on
  the ``large`` model's width); a key may be left out for some jobs (the ``control`` tokenizer has
  no perceptual loss, so the semantic backbone does not shape it) or only hold under some params
  (``data.synthetic`` only shapes a synthetic dataset). Settings that shape no output are not
  declared: checkpoint cadence (resume only), worker counts of order-preserving pools, the sampling
  settings for training (they are declared by ``sample`` alone), and the execution settings
  ``run.device``, ``run.gpus_per_job``, ``run.accumulation_steps``, ``run.compile`` and the thread
  count, which change float rounding, not the computation (the schema says where a tokenizer can
  still differ), and are recorded in every sidecar.
* ``gates``: keys that check a finished run without shaping it (``semantic.min_val_accuracy``):
  changing one reruns the rule, which resumes from its finished state and checks again.
* ``modules``: the package files whose code shapes its outputs -- its code inputs. A module is there
  because it is listed, not because something imports it; ``tests/test_runs.py`` checks that every
  module a rule's job can import (statically, lazy imports included) is listed, nothing else is,
  bar :data:`SHAPES_NO_OUTPUT`, and that the layers only import downward.

Everything else is derived from here: the rules' ``params:`` and code inputs (workflow/rules), the
resume directory and the trainers' fingerprints (``run_values``), the checkpoint sidecars (which
record the same values), the run identities printed beside reported numbers (``lineage_keys``)
and dvc.yaml's ``params:`` and ``deps:`` (``seqgan dvc-yaml``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seqgan.config import lookup, params_hash

__all__ = [
    "DECLARATIONS",
    "Key",
    "RunDeclaration",
    "SHAPES_NO_OUTPUT",
    "code_files",
    "declaration",
    "lineage_keys",
    "run_hash",
    "run_keys",
    "run_values",
]

Condition = Callable[[Mapping[str, Any], Mapping[str, str]], bool]


@dataclass(frozen=True)
class Key:
    """One params key path of a declaration.

    ``unless``: wildcard values for which the key does not shape the output
    (``{"variant": "control"}``). ``only_if(raw_params, wildcards)``: a structural condition on the
    params themselves (``data.synthetic`` only when ``data.source`` is synthetic).
    """

    path: str
    unless: Mapping[str, str] = field(default_factory=dict)
    only_if: Condition | None = None

    def applies(self, raw: Mapping[str, Any], wildcards: Mapping[str, str]) -> bool:
        if any(str(wildcards.get(name)) == value for name, value in self.unless.items()):
            return False
        return self.only_if is None or self.only_if(raw, wildcards)


@dataclass(frozen=True)
class RunDeclaration:
    """``rule``: the workflow rule (and DVC stage group); ``job``: the module of the job function
    its command runs; ``modules``: its code inputs (the job module included)."""

    rule: str
    keys: tuple[Key, ...]
    job: str
    modules: tuple[str, ...]
    gates: tuple[str, ...] = ()
    doc: str = ""


def _keys(*paths: str | Key) -> tuple[Key, ...]:
    return tuple(p if isinstance(p, Key) else Key(p) for p in paths)


def _synthetic(raw: Mapping[str, Any], _wc: Mapping[str, str]) -> bool:
    return raw["data"]["source"] == "synthetic"


def _real(raw: Mapping[str, Any], _wc: Mapping[str, str]) -> bool:
    return raw["data"]["source"] != "synthetic"


def _noentropy(_raw: Mapping[str, Any], wc: Mapping[str, str]) -> bool:
    return wc.get("variant") == "noentropy"


def _embedded(raw: Mapping[str, Any], _wc: Mapping[str, str]) -> bool:
    return raw["semantic"]["backbone"] == "embedded"


# Files that shape no output (``seqgan.cli`` parses arguments and dispatches; ``seqgan.config``
# types and validates params.yaml without defaults, so a rule's values come through its keys;
# progress bars and the declarations themselves), left out of every rule's code inputs on purpose.
SHAPES_NO_OUTPUT: dict[str, str] = {
    "seqgan/__init__.py": "package marker",
    "seqgan/__main__.py": "calls seqgan.cli.main",
    "seqgan/cli.py": "parses arguments and dispatches to one job function per command",
    "seqgan/config.py": "types and validates params.yaml; no defaults: values reach a rule through its keys",
    "seqgan/progress.py": "progress bars, silent in workflow jobs",
    "seqgan/runs.py": "this file: its values reach a rule through the keys it declares",
}

# Structural keys: which runs exist (variants, seeds, objectives, sizes). A figure, table or claim
# that reads one file per run depends on them.
_RUN_SET = (
    "tokenizer.alphas",
    "tokenizer.control_no_perceptual",
    "tokenizer.control_no_entropy",
    "tokenizer.phase2.from_alpha",
    "evaluation.experiment_seeds",
    "evaluation.sampling_seeds",
    "transformer.objectives",
    "transformer.models",
    "run.seed",
)
_TOKENIZER_SHAPE = (
    "data.resolution",
    "tokenizer.architecture",
    "tokenizer.quantizer",
    "tokenizer.loss",
    "tokenizer.gan",
)
_PHASE1 = tuple(
    f"tokenizer.phase1.{k}"
    for k in (
        "init_from",
        "batch_size",
        "iterations",
        "lr",
        "end_lr",
        "lr_decay",
        "beta1",
        "beta2",
        "log_every",
        "val_every",
        "val_images",
    )
)
_PHASE2 = tuple(
    f"tokenizer.phase2.{k}"
    for k in (
        "from_alpha",
        "alpha",
        "batch_size",
        "iterations",
        "lr",
        "end_lr",
        "lr_decay",
        "beta1",
        "beta2",
        "log_every",
        "val_every",
        "val_images",
        "attention",
    )
)
_TRANSFORMER_SHAPE = (
    "data.resolution",
    "tokenizer.architecture",
    "transformer.conditional",
    "transformer.num_classes",
    "transformer.sizes.{size}",
    "transformer.optimizer",
    "transformer.eval_every",
    "transformer.val_batches",
)
_SCHEDULE = ("batch_size", "iterations", "lr_decay", "end_lr", "decay_start")
SAMPLING_KEYS: dict[str, tuple[str, ...]] = {
    "ar": ("transformer.ar.temperature", "transformer.ar.top_k", "transformer.ar.top_p"),
    "nar": ("transformer.nar.steps", "transformer.nar.temperature", "transformer.nar.mask_schedule"),
}
# The code of the two embedded classifiers (semantic network and judge: one job module, one trainer).
_CLASSIFIER_TRAINING_CODE = (
    "seqgan/artefacts/checkpoints.py",
    "seqgan/artefacts/files.py",
    "seqgan/artefacts/images.py",
    "seqgan/artefacts/tensors.py",
    "seqgan/artefacts/provenance.py",
    "seqgan/nets/backbone.py",
    "seqgan/nets/common.py",
    "seqgan/nets/judge.py",
    "seqgan/nets/semantic.py",
    "seqgan/train/classifier.py",
    "seqgan/train/distributed.py",
    "seqgan/train/gates.py",
    "seqgan/train/live.py",
    "seqgan/train/loop.py",
    "seqgan/train/resume.py",
    "seqgan/train/runtime.py",
    "seqgan/train/semantic_job.py",
)
_SEMANTIC_NET = Key("semantic.backbone")
# The code of phase-1 and phase-2 tokenizer training (both rules run the same job module).
_TOKENIZER_TRAINING_CODE = (
    "seqgan/artefacts/checkpoints.py",
    "seqgan/artefacts/files.py",
    "seqgan/artefacts/images.py",
    "seqgan/artefacts/tensors.py",
    "seqgan/artefacts/provenance.py",
    "seqgan/losses/adversarial.py",
    "seqgan/losses/perceptual.py",
    "seqgan/losses/psnr.py",
    "seqgan/nets/attention.py",
    "seqgan/nets/backbone.py",
    "seqgan/nets/common.py",
    "seqgan/nets/discriminator.py",
    "seqgan/nets/factory.py",
    "seqgan/nets/pretrained.py",
    "seqgan/nets/quantizer.py",
    "seqgan/nets/semantic.py",
    "seqgan/nets/vqgan.py",
    "seqgan/train/distributed.py",
    "seqgan/train/live.py",
    "seqgan/train/loop.py",
    "seqgan/train/resume.py",
    "seqgan/train/runtime.py",
    "seqgan/train/tokenizer.py",
    "seqgan/train/tokenizer_eval.py",
    "seqgan/train/tokenizer_init.py",
    "seqgan/train/tokenizer_job.py",
    "seqgan/train/tokenizer_losses.py",
    "seqgan/train/tokenizer_model.py",
    "seqgan/train/tokenizer_schedule.py",
    "seqgan/train/variants.py",
)
# The code of AR and NAR transformer training (both rules run the same job module).
_TRANSFORMER_TRAINING_CODE = (
    "seqgan/artefacts/checkpoints.py",
    "seqgan/artefacts/files.py",
    "seqgan/artefacts/provenance.py",
    "seqgan/artefacts/tokens.py",
    "seqgan/nets/common.py",
    "seqgan/nets/mask_schedule.py",
    "seqgan/nets/transformer.py",
    "seqgan/nets/transformer_factory.py",
    "seqgan/train/distributed.py",
    "seqgan/train/live.py",
    "seqgan/train/loop.py",
    "seqgan/train/resume.py",
    "seqgan/train/runtime.py",
    "seqgan/train/transformer.py",
    "seqgan/train/transformer_job.py",
)
# Reported run identities: the keys of every run a reported number went through.
_REPORTED = ("run.name", *_RUN_SET, "evaluation.generation_reference")


def _declare(*items: RunDeclaration) -> dict[str, RunDeclaration]:
    return {d.rule: d for d in items}


DECLARATIONS: dict[str, RunDeclaration] = _declare(
    RunDeclaration(
        "prepare_data",
        _keys(
            "data.source",
            "data.resolution",
            Key("data.synthetic", only_if=_synthetic),
            *(
                Key(f"data.folder.{k}", only_if=_real)
                for k in (
                    "train_dir",
                    "val_dir",
                    "layout",
                    "val_holdout_fraction",
                    "max_image_pixels",
                    "small_images",
                )
            ),
        ),
        job="seqgan/data/prepare_job.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/data/prepare.py",
            "seqgan/data/prepare_job.py",
            "seqgan/data/synthetic.py",
        ),
        doc="data.folder.workers is left out: the pool is order-preserving (imap), the split is the same",
    ),
    RunDeclaration(
        "train_semantic",
        _keys(
            *(
                f"semantic.{k}"
                for k in (
                    "widths",
                    "iterations",
                    "batch_size",
                    "lr",
                    "weight_decay",
                    "warmup_steps",
                    "hflip",
                    "eval_every",
                )
            ),
            "run.seed",
            # the number of poolings puts relu5_3 on the token grid (seqgan.nets.semantic.semantic_pools)
            "tokenizer.architecture.channel_mult",
        ),
        job="seqgan/train/semantic_job.py",
        modules=_CLASSIFIER_TRAINING_CODE,
        gates=("semantic.min_val_accuracy",),
    ),
    RunDeclaration(
        "train_judge",
        _keys(
            *(
                f"judge.{k}"
                for k in (
                    "widths",
                    "iterations",
                    "batch_size",
                    "lr",
                    "weight_decay",
                    "warmup_steps",
                    "seed",
                    "eval_every",
                )
            ),
        ),
        job="seqgan/train/semantic_job.py",
        modules=_CLASSIFIER_TRAINING_CODE,
        gates=("judge.min_val_accuracy",),
    ),
    RunDeclaration(
        "tokenizer_phase1",
        _keys(
            *_TOKENIZER_SHAPE,
            *_PHASE1,
            Key("semantic.backbone", unless={"variant": "control"}),
            Key("tokenizer.alphas", only_if=_noentropy),  # the control's alpha is the sweep's smallest
        ),
        job="seqgan/train/tokenizer_job.py",
        modules=_TOKENIZER_TRAINING_CODE,
    ),
    RunDeclaration(
        "tokenizer_phase2",
        _keys(*_TOKENIZER_SHAPE, *_PHASE2, _SEMANTIC_NET),
        job="seqgan/train/tokenizer_job.py",
        modules=_TOKENIZER_TRAINING_CODE,
    ),
    RunDeclaration(
        "fid_reference",
        _keys("evaluation.fid_network", "evaluation.batch_size", _SEMANTIC_NET),
        job="seqgan/evaluate/fid_reference_job.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/evaluate/fid.py",
            "seqgan/evaluate/fid_reference_job.py",
            "seqgan/evaluate/networks.py",
            "seqgan/nets/backbone.py",
            "seqgan/nets/judge.py",
            "seqgan/nets/pretrained.py",
            "seqgan/nets/semantic.py",
            "seqgan/train/runtime.py",
        ),
    ),
    RunDeclaration(
        "eval_tokenizer",
        _keys("evaluation.fid_network", "evaluation.batch_size", _SEMANTIC_NET),
        job="seqgan/evaluate/tokenizer_job.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/data/synthetic.py",
            "seqgan/evaluate/fid.py",
            "seqgan/evaluate/ground_truth.py",
            "seqgan/evaluate/networks.py",
            "seqgan/evaluate/reconstruction.py",
            "seqgan/evaluate/tokenizer_job.py",
            "seqgan/losses/perceptual.py",
            "seqgan/losses/psnr.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/backbone.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/judge.py",
            "seqgan/nets/pretrained.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/semantic.py",
            "seqgan/nets/vqgan.py",
            "seqgan/train/runtime.py",
            "seqgan/train/tokenizer_model.py",
        ),
    ),
    RunDeclaration(
        "encode_tokens",
        _keys("evaluation.batch_size", "tokenizer.architecture.codebook_size"),
        job="seqgan/evaluate/tokens.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/artefacts/tokens.py",
            "seqgan/evaluate/tokens.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/vqgan.py",
            "seqgan/train/runtime.py",
            "seqgan/train/tokenizer_model.py",
        ),
    ),
    RunDeclaration(
        "train_ar",
        _keys(*_TRANSFORMER_SHAPE, *(f"transformer.ar.{k}" for k in _SCHEDULE)),
        job="seqgan/train/transformer_job.py",
        modules=_TRANSFORMER_TRAINING_CODE,
    ),
    RunDeclaration(
        "train_nar",
        _keys(*_TRANSFORMER_SHAPE, *(f"transformer.nar.{k}" for k in _SCHEDULE), "transformer.nar.mask_schedule"),
        job="seqgan/train/transformer_job.py",
        modules=_TRANSFORMER_TRAINING_CODE,
    ),
    RunDeclaration(
        "sample",
        _keys(
            *(
                Key(k, only_if=lambda _r, wc, o=o: wc.get("objective") == o)
                for o, ks in SAMPLING_KEYS.items()
                for k in ks
            ),
            "evaluation.num_samples",
            "evaluation.batch_size",
            "transformer.conditional",
            "transformer.num_classes",
        ),
        job="seqgan/sample/sample_job.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/artefacts/tokens.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/mask_schedule.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/transformer.py",
            "seqgan/nets/transformer_factory.py",
            "seqgan/nets/vqgan.py",
            "seqgan/sample/ar.py",
            "seqgan/sample/filtering.py",
            "seqgan/sample/generate.py",
            "seqgan/sample/nar.py",
            "seqgan/sample/sample_job.py",
            "seqgan/train/distributed.py",
            "seqgan/train/live.py",
            "seqgan/train/loop.py",
            "seqgan/train/runtime.py",
            "seqgan/train/tokenizer_model.py",
            "seqgan/train/transformer.py",
        ),
    ),
    RunDeclaration(
        "eval_samples",
        _keys(
            "evaluation.fid_network",
            "evaluation.generation_reference",
            "evaluation.batch_size",
            _SEMANTIC_NET,
            "transformer.conditional",
            "run.name",
            *(
                f"evaluation.verdicts.{k}"
                for k in (
                    "confident_probability",
                    "inception_score_splits",
                    "histogram_noise_draws",
                )
            ),
        ),
        job="seqgan/evaluate/samples_job.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/artefacts/samples.py",
            "seqgan/evaluate/fid.py",
            "seqgan/evaluate/generation.py",
            "seqgan/evaluate/networks.py",
            "seqgan/evaluate/samples_job.py",
            "seqgan/nets/backbone.py",
            "seqgan/nets/common.py",
            "seqgan/nets/judge.py",
            "seqgan/nets/pretrained.py",
            "seqgan/nets/semantic.py",
            "seqgan/train/classifier.py",
            "seqgan/train/gates.py",
            "seqgan/train/live.py",
            "seqgan/train/loop.py",
            "seqgan/train/runtime.py",
        ),
    ),
    RunDeclaration(
        "sample_grid",
        _keys("evaluation.sample_grid", "transformer.conditional", "evaluation.sampling_seeds", "run.name"),
        job="seqgan/report/sample_grids.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/samples.py",
            "seqgan/report/labels.py",
            "seqgan/report/sample_grids.py",
        ),
    ),
    RunDeclaration(
        "fig1_phase2_decoder",
        _keys(
            "evaluation.sample_grid.columns",
            "transformer.objectives",
            "transformer.models",
            "evaluation.sampling_seeds",
            "tokenizer.phase2.from_alpha",
            "run.seed",
            "run.name",
        ),
        job="seqgan/report/fig1.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/artefacts/samples.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/losses/psnr.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/vqgan.py",
            "seqgan/report/fig1.py",
            "seqgan/report/labels.py",
            "seqgan/report/sample_grids.py",
            "seqgan/train/runtime.py",
            "seqgan/train/tokenizer_model.py",
        ),
    ),
    RunDeclaration(
        "model_sizes",
        _keys(
            "data.resolution",
            "tokenizer.architecture",
            "tokenizer.phase2.attention",
            "tokenizer.gan.disc_channels",
            "transformer.sizes",
            "transformer.num_classes",
            "transformer.conditional",
            "run.name",
        ),
        job="seqgan/report/model_sizes.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/mask_schedule.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/transformer.py",
            "seqgan/nets/transformer_factory.py",
            "seqgan/nets/vqgan.py",
            "seqgan/report/labels.py",
            "seqgan/report/model_sizes.py",
            "seqgan/report/paper_reference.yaml",
            "seqgan/report/reference.py",
        ),
    ),
    RunDeclaration(
        "fig2_val_loss",
        _keys(
            *_RUN_SET,
            "run.name",
            "evaluation.verdicts.tokenizer_min_psnr",
            "evaluation.verdicts.tokenizer_min_usage",
            "evaluation.convergence",
        ),
        job="seqgan/report/fig2.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/data/synthetic.py",
            "seqgan/evaluate/ground_truth.py",
            "seqgan/report/convergence.py",
            "seqgan/report/fig2.py",
            "seqgan/report/fig6b.py",
            "seqgan/report/floors.py",
            "seqgan/report/labels.py",
        ),
    ),
    RunDeclaration(
        "fig3_visualization",
        _keys(*_RUN_SET, "run.name", "evaluation.visualization_images", "evaluation.batch_size"),
        job="seqgan/report/fig3.py",
        modules=(
            "seqgan/artefacts/checkpoints.py",
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/artefacts/provenance.py",
            "seqgan/artefacts/tensors.py",
            "seqgan/artefacts/tokens.py",
            "seqgan/evaluate/visualize.py",
            "seqgan/nets/attention.py",
            "seqgan/nets/common.py",
            "seqgan/nets/discriminator.py",
            "seqgan/nets/factory.py",
            "seqgan/nets/mask_schedule.py",
            "seqgan/nets/quantizer.py",
            "seqgan/nets/transformer.py",
            "seqgan/nets/transformer_factory.py",
            "seqgan/nets/vqgan.py",
            "seqgan/report/fig3.py",
            "seqgan/report/fig6b.py",
            "seqgan/report/labels.py",
            "seqgan/sample/ar.py",
            "seqgan/sample/filtering.py",
            "seqgan/train/distributed.py",
            "seqgan/train/live.py",
            "seqgan/train/loop.py",
            "seqgan/train/runtime.py",
            "seqgan/train/tokenizer_model.py",
            "seqgan/train/transformer.py",
            "seqgan/train/variants.py",
        ),
    ),
    RunDeclaration(
        "fig6b_alpha_sweep",
        _keys(*_RUN_SET, "run.name"),
        job="seqgan/report/fig6b.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/report/fig6b.py",
            "seqgan/report/labels.py",
        ),
    ),
    RunDeclaration(
        "paper_table",
        _keys(*_REPORTED),
        job="seqgan/report/tables.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/report/artefacts.py",
            "seqgan/report/paper_reference.yaml",
            "seqgan/report/reference.py",
            "seqgan/report/stats.py",
            "seqgan/report/tables.py",
        ),
        doc="also the lineage keys of every reported run (lineage_keys), added by run_keys",
    ),
    RunDeclaration(
        "hparam_audit",
        _keys("data", "semantic", "tokenizer", "transformer", "run.name"),
        job="seqgan/report/audit.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/report/artefacts.py",
            "seqgan/report/audit.py",
            "seqgan/report/paper_reference.yaml",
            "seqgan/report/reference.py",
        ),
    ),
    RunDeclaration(
        "claims",
        _keys(*_REPORTED, "evaluation.confirmatory_seeds", "evaluation.verdicts", "evaluation.convergence"),
        job="seqgan/report/claims.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/artefacts/images.py",
            "seqgan/data/synthetic.py",
            "seqgan/evaluate/ground_truth.py",
            "seqgan/report/artefacts.py",
            "seqgan/report/claims.py",
            "seqgan/report/convergence.py",
            "seqgan/report/floors.py",
            "seqgan/report/stats.py",
            "seqgan/report/verdicts/decoder.py",
            "seqgan/report/verdicts/generation.py",
            "seqgan/report/verdicts/manipulation.py",
            "seqgan/report/verdicts/outcomes.py",
            "seqgan/report/verdicts/usage.py",
            "seqgan/report/verdicts/validation_loss.py",
        ),
        doc="also the lineage keys of every reported run (lineage_keys), added by run_keys",
    ),
    RunDeclaration(
        "power_pilot",
        _keys(
            "tokenizer.alphas",
            "transformer.objectives",
            "transformer.models",
            "evaluation.pilot_seeds",
            "evaluation.confirmatory_seeds",
            "evaluation.convergence",
            "evaluation.verdicts.interval_confidence",
            "evaluation.verdicts.power",
            "evaluation.verdicts.target_half_width",
            "evaluation.verdicts.manipulation_min_difference",
        ),
        job="seqgan/report/pilot.py",
        modules=(
            "seqgan/artefacts/files.py",
            "seqgan/report/artefacts.py",
            "seqgan/report/convergence.py",
            "seqgan/report/pilot.py",
            "seqgan/report/stats.py",
            "seqgan/report/verdicts/manipulation.py",
        ),
        doc="the pilot's runs are the training rules at evaluation.pilot_seeds; their keys reach it through its inputs",
    ),
)

# The runs a reported number goes through, per kind of reported run (their keys form its identity).
LINEAGE: dict[str, tuple[str, ...]] = {
    "tokenizer_phase1": ("prepare_data", "train_semantic", "tokenizer_phase1", "fid_reference", "eval_tokenizer"),
    "tokenizer_phase2": (
        "prepare_data",
        "train_semantic",
        "tokenizer_phase1",
        "tokenizer_phase2",
        "fid_reference",
        "eval_tokenizer",
    ),
    "transformer": ("prepare_data", "train_semantic", "tokenizer_phase1", "encode_tokens", "train_ar", "train_nar"),
    "generation": (
        "prepare_data",
        "train_semantic",
        "tokenizer_phase1",
        "tokenizer_phase2",
        "encode_tokens",
        "train_ar",
        "train_nar",
        "sample",
        "fid_reference",
        "eval_samples",
    ),
}
_REPORTING_RULES = ("paper_table", "claims", "power_pilot")


def declaration(rule: str) -> RunDeclaration:
    try:
        return DECLARATIONS[rule]
    except KeyError:
        raise KeyError(
            f"no run declaration for rule {rule!r} (seqgan/runs.py declares {', '.join(DECLARATIONS)})"
        ) from None


def _fill(path: str, wildcards: Mapping[str, str]) -> str:
    try:
        return path.format_map(dict(wildcards))
    except KeyError as exc:
        raise KeyError(f"key {path!r} needs wildcard {exc.args[0]!r}") from None


def _expand_all(path: str, raw: Mapping[str, Any]) -> list[str]:
    """A key with placeholders, for every value the params configure (identities span all runs)."""
    if "{size}" in path:
        return [path.replace("{size}", s) for s in raw["transformer"]["models"]]
    if "{objective}" in path:
        return [path.replace("{objective}", o) for o in raw["transformer"]["objectives"]]
    return [path]


def lineage_keys(kind: str, raw: Mapping[str, Any]) -> list[str]:
    """Key paths behind a reported run of ``kind`` (a key of :data:`LINEAGE`), gates left out."""
    keys: list[str] = []
    for rule in LINEAGE[kind]:
        if rule == "train_semantic" and not _embedded(raw, {}):
            continue
        for key in declaration(rule).keys:
            if key.only_if is not None and not key.only_if(raw, {}):
                continue
            keys += [k for k in _expand_all(key.path, raw) if k not in keys]
    return keys


def run_keys(
    rule: str, raw: Mapping[str, Any], wildcards: Mapping[str, str] | None = None, *, gates: bool = True
) -> list[str]:
    """The key paths that shape a job of ``rule`` (and its gates unless ``gates=False``), in
    declaration order, placeholders filled from ``wildcards``."""
    wc = dict(wildcards or {})
    d = declaration(rule)
    keys = [_fill(k.path, wc) for k in d.keys if k.applies(raw, wc)]
    if rule in _REPORTING_RULES:
        for kind in LINEAGE:
            keys += [k for k in lineage_keys(kind, raw) if k not in keys]
    if gates:
        keys += [g for g in d.gates if g not in keys]
    return keys


def run_values(
    rule: str, raw: Mapping[str, Any], wildcards: Mapping[str, str] | None = None, *, gates: bool = True
) -> dict[str, Any]:
    """``{key path: value}`` of :func:`run_keys`: a rule's ``params:``, and with ``gates=False``
    what identifies a training run (resume directory, fingerprint, sidecar)."""
    return {k: copy.deepcopy(lookup(dict(raw), k)) for k in run_keys(rule, raw, wildcards, gates=gates)}


def run_hash(rule: str, raw: Mapping[str, Any], wildcards: Mapping[str, str] | None = None) -> str:
    """Short hash of :func:`run_values` without gates."""
    return params_hash(run_values(rule, raw, wildcards, gates=False))


def code_files(rule: str) -> list[str]:
    """A rule's code inputs: its declared modules, paths relative to the repository root."""
    return list(declaration(rule).modules)
