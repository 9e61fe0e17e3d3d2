"""GPU-hours of the paper configurations, estimated from FLOP counts (no GPU, no benchmark).

    .venv/bin/python benchmarks/estimate_gpu_hours.py [--configs imagenet ffhq ...] [--out FILE.md]

For every configs/<name>.yaml the workflow's own plan is read (``snakemake -n -p`` of rule all in a
temporary workspace, as tests/test_paper_scale_dag.py does), every planned job gets a FLOP count,
and each paper figure / table gets the FLOPs of the jobs it needs from nothing (its upstream
closure in that DAG; closures of different targets share jobs, so they do not add up). FLOPs
become GPU-hours at ``UTILISATION`` of the dense bf16 tensor-core peak (``PEAK_TFLOPS``).

How each job is counted (the sums use PyTorch's own per-op formulas, torch.utils.flop_counter:
matmuls, convolutions and their backward passes; norms, activations and optimiser updates are not
counted, which a 35 % utilisation absorbs):

* tokenizer_phase1 / tokenizer_phase2: ONE real training iteration
  (:class:`seqgan.train.tokenizer.TokenizerRun.train_step`, batch 1, full resolution, on CPU):
  generator forward + backward with L1, the VQ terms and L_per^alpha (ImageNet VGG16 + LPIPS
  architecture, random weights: same cost), the generator's adversarial term and the
  discriminator's step with R1 (double backward) -- counted with the GAN on and off -- times
  batch x iterations, the GAN share being (iterations - gan.start_step) / iterations. Three
  phase-1 kinds cost differently: alpha = 0 (no gradient through the VGG classifier head),
  alpha > 0, and the control (no perceptual loss).
* train_ar / train_nar: 6 N + 12 L T d FLOPs per token (N = weights of the linear layers:
  attention, MLP, head; T = positions, L = layers, d = width; forward + backward = 3 x forward;
  full T x T attention, as the math kernel computes) times batch x T x iterations, plus the
  validation passes (2 N + 4 L T d per token). Checked here against a counted forward + backward.
* sample: AR 2 N T + 2 L d T^2 per image (one cached step per token), NAR steps x
  (2 N T + 4 L d T^2) (MaskGIT recomputes the sequence every step), plus the decoder's forward
  (counted) -- per image, times evaluation.num_samples. AR decoding is memory-bound on a GPU, far
  below 35 % utilisation: its hours are a lower bound.
* encode_tokens, fid_reference, eval_tokenizer, eval_samples: counted forward passes (encoder;
  Inception-v3 at 299 px, torchvision's architecture, for the clean-fid network; tokenizer +
  Inception + two VGG16 passes for reconstruction metrics) times the images they see. Image
  counts: the paper's split sizes (seqgan/report/paper_reference.yaml, supplement Table 3; LSUN
  validation = data.folder.val_holdout_fraction of the train set).
* prepare_data (CPU), figures, tables, claims: no GPU time.
"""

from __future__ import annotations

import argparse
import collections
import copy
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
import yaml
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# Dense (no 2:4 sparsity) bf16 tensor-core peaks of the SXM parts, from NVIDIA's datasheets.
PEAK_TFLOPS = {"H100": 989.4, "A100": 312.0}
UTILISATION = 0.35
INCEPTION_PX = 299  # clean-fid resizes every image to 299 px for Inception-v3


# --------------------------------------------------------------------------------------------
# The workflow's plan (shared with tests/test_paper_scale_dag.py)
# --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One job of a `snakemake -n -p` listing."""

    rule: str
    fields: dict[str, str] = field(default_factory=dict)
    shell: str = ""

    def files(self, key: str) -> list[str]:
        return self.fields[key].split(", ") if key in self.fields else []

    @property
    def resources(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.files("resources"))

    @property
    def wildcards(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.files("wildcards"))


def parse_dry_run(text: str) -> list[Job]:
    """The job blocks of `snakemake -n -p`: `rule X:`, indented `key: value` lines, `Shell command:`."""
    jobs: list[Job] = []
    current: Job | None = None
    for line in text.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line):
            current = Job(match.group(1))
            jobs.append(current)
        elif current is not None and (match := re.fullmatch(r"    (\w+): (.*)", line)):
            current.fields[match.group(1)] = match.group(2)
        elif current is not None and line.startswith("Shell command: "):
            current.shell = line.removeprefix("Shell command: ")
            current = None
    return jobs


def make_workspace(root: Path, params_file: Path) -> tuple[Path, dict[str, Any]]:
    """``root`` holding ``params_file`` as params.yaml and empty raw-data folders it names."""
    root.mkdir(parents=True)
    shutil.copyfile(params_file, root / "params.yaml")
    raw = yaml.safe_load(params_file.read_text())
    for key in ("train_dir", "val_dir"):  # the dry run reads nothing from them
        if raw["data"]["folder"][key]:
            (root / raw["data"]["folder"][key]).mkdir(parents=True)
    return root, raw


def run_snakemake(workdir: Path, *args: str) -> str:
    result = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {workdir}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def plan_default_target(params_file: Path) -> tuple[dict[str, Any], list[Job]]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir, raw = make_workspace(Path(tmp) / "w", params_file)
        return raw, parse_dry_run(run_snakemake(workdir, "-n", "-p"))


def upstream(jobs: list[Job], target: str) -> list[Job]:
    """The jobs ``target`` needs from nothing (itself included): its closure in the DAG."""
    producer = {out: j for j in jobs for out in j.files("output")}
    todo, seen = [producer[target]], {}
    while todo:
        job = todo.pop()
        if id(job) not in seen:
            seen[id(job)] = job
            todo += [producer[f] for f in job.files("input") if f in producer]
    return list(seen.values())


# --------------------------------------------------------------------------------------------
# Counting FLOPs
# --------------------------------------------------------------------------------------------


class FlopCount(TorchDispatchMode):
    """FLOPs of the aten ops run inside the block, by PyTorch's own formulas.

    Unlike ``FlopCounterMode`` it tracks no modules, so it works through ``autograd.grad`` on a
    leaf (the R1 penalty). Attention is counted through the math kernel (see :func:`counted`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def counted(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()``; scaled-dot-product attention runs as matmuls so that it is counted."""
    with sdpa_kernel(SDPBackend.MATH), FlopCount() as count:
        fn()
    return count.total


def single_process(raw: dict[str, Any], **phase_batch: int) -> Any:
    """``raw`` on one CPU process with the given ``tokenizer.<phase>.batch_size`` values."""
    from seqgan.config import validate_params

    raw = copy.deepcopy(raw)
    raw["run"].update(device="cpu", gpus_per_job=1)
    raw["tokenizer"]["phase1"]["init_from"] = ""
    for phase, batch in phase_batch.items():
        raw["tokenizer"][phase]["batch_size"] = batch
    return validate_params(raw, "estimate")


def _architecture_key(raw: dict[str, Any]) -> str:
    """What the per-image costs depend on (configurations that share it share the counts)."""
    t = raw["tokenizer"]
    keep = {
        "resolution": raw["data"]["resolution"],
        "semantic": raw["semantic"],
        "classes": raw["data"]["synthetic"]["num_classes"],
        "architecture": t["architecture"],
        "attention": t["phase2"]["attention"],
        "perceptual": t["loss"]["perceptual_weight"] > 0,
        "gan": {
            "on": t["gan"]["weight"] > 0,
            "r1": t["gan"]["r1_gamma"] > 0,
            "adaptive": t["gan"]["adaptive_weight"],
            "channels": t["gan"]["disc_channels"],
        },
    }
    return yaml.safe_dump(keep, sort_keys=True)


_COUNTS: dict[tuple[Any, ...], int] = {}


def _once(key: tuple[Any, ...], count: Callable[[], int]) -> int:
    """Count once per architecture (a paper-size training step takes seconds on a CPU)."""
    if key not in _COUNTS:
        _COUNTS[key] = count()
    return _COUNTS[key]


def _perceptual(params: Any, alpha: float) -> nn.Module:
    from seqgan.losses.perceptual import VGG16Backbone
    from seqgan.nets.semantic import SemanticNet, semantic_pools
    from seqgan.train.tokenizer_losses import timing_perceptual_loss

    if params.semantic.backbone == "embedded":
        net = SemanticNet(params.semantic.widths, params.data.synthetic.num_classes, semantic_pools(params))
        return timing_perceptual_loss(params, net, alpha, None)
    vgg = VGG16Backbone(torchvision.models.vgg16(weights=None))
    return timing_perceptual_loss(params, vgg, alpha, vgg.lpips_layer_weights())


def tokenizer_step_flops(raw: dict[str, Any], phase: int, kind: str, gan: bool) -> int:
    """FLOPs of one training iteration on ONE image (kind: control | alpha0 | alpha)."""
    return _once(
        (_architecture_key(raw), "step", phase, kind, gan), lambda: _count_tokenizer_step(raw, phase, kind, gan)
    )


def _count_tokenizer_step(raw: dict[str, Any], phase: int, kind: str, gan: bool) -> int:
    from seqgan.artefacts.tensors import to_model_input
    from seqgan.data.synthetic import generate_images
    from seqgan.train.distributed import Distributed
    from seqgan.train.tokenizer import TokenizerRun
    from seqgan.train.tokenizer_model import prepare_tokenizer

    raw = copy.deepcopy(raw)
    raw["tokenizer"]["gan"]["start_step"] = 0 if gan else 10**9
    params = single_process(raw, phase1=1, phase2=1)
    torch.manual_seed(0)
    tokenizer = prepare_tokenizer(params, 1, None)
    if phase == 2:  # the attention decoder on top of the (here random) phase-1 weights
        from seqgan.nets.factory import build_tokenizer
        from seqgan.nets.vqgan import load_phase1_state
        from seqgan.train.tokenizer_model import freeze_encoder_and_codebook

        phase2 = build_tokenizer(params, 2)
        load_phase1_state(phase2, tokenizer.state_dict())
        freeze_encoder_and_codebook(phase2)
        tokenizer = phase2
    alpha = {"control": 0.0, "alpha0": 0.0, "alpha": 1.0}[kind]
    perceptual = (
        None if kind == "control" or params.tokenizer.loss.perceptual_weight == 0 else _perceptual(params, alpha)
    )
    run = TokenizerRun(params, phase, tokenizer, perceptual, Distributed.single(torch.device("cpu")))
    run.set_modes()
    images, _ = generate_images(1, params.data.resolution, 10, seed=0, split="estimate")
    x = to_model_input(images, torch.device("cpu"))
    return counted(lambda: run.train_step(x, 0))


def forward_flops(raw: dict[str, Any], what: str) -> int:
    """Forward FLOPs on ONE image: encoder | decoder1 | decoder2 | inception | vgg | semantic."""
    return _once((_architecture_key(raw), "forward", what), lambda: _count_forward(raw, what))


def _count_forward(raw: dict[str, Any], what: str) -> int:
    from seqgan.nets.factory import build_tokenizer
    from seqgan.nets.semantic import SemanticNet

    params = single_process(raw)
    res = params.data.resolution
    with torch.no_grad():
        if what == "inception":
            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
            return counted(lambda: net(torch.zeros(1, 3, INCEPTION_PX, INCEPTION_PX)))
        if what == "vgg":
            net = torchvision.models.vgg16(weights=None).eval()
            return counted(lambda: net(torch.zeros(1, 3, res, res)))
        if what == "semantic":
            net = SemanticNet(params.semantic.widths, params.data.synthetic.num_classes).eval()
            return counted(lambda: net(torch.zeros(1, 3, res, res)))
        tokenizer = build_tokenizer(params, 2 if what == "decoder2" else 1).eval()
        x = torch.zeros(1, 3, res, res)
        if what == "encoder":
            return counted(lambda: tokenizer.encode(x))
        _, ids, _ = tokenizer.encode(x)
        return counted(lambda: tokenizer.decode_ids(ids))


@dataclass(frozen=True)
class TransformerShape:
    linear_weights: int  # N: weights of the linear layers (attention, MLP, head)
    layers: int
    dim: int
    positions: int  # T


def transformer_shape(raw: dict[str, Any], size: str, objective: str) -> TransformerShape:
    from seqgan.nets.transformer_factory import build_transformer

    params = single_process(raw)
    with torch.device("meta"):
        model = build_transformer(params, size, objective)  # type: ignore[arg-type]
    return shape_of(model)


def shape_of(model: nn.Module) -> TransformerShape:
    """The FLOP-relevant shape of a built transformer (``benchmarks/gpu_smoke.py`` derives MFU from it)."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    config = model.config  # type: ignore[attr-defined]
    return TransformerShape(linear, config.layers, config.dim, config.num_positions)


def transformer_train_flops_per_token(s: TransformerShape) -> float:
    return 6 * s.linear_weights + 12 * s.layers * s.positions * s.dim


def counted_transformer_train_flops_per_token(raw: dict[str, Any], size: str, objective: str) -> float:
    """The same quantity counted on one sequence's forward + backward (cross-check of the formula)."""
    from seqgan.nets.transformer import ar_loss, nar_loss
    from seqgan.nets.transformer_factory import build_transformer, tokens_per_image

    params = single_process(raw)
    torch.manual_seed(0)
    model = build_transformer(params, size, objective)  # type: ignore[arg-type]
    ids = torch.zeros(1, tokens_per_image(params), dtype=torch.long)
    labels = torch.zeros(1, dtype=torch.long) if params.transformer.conditional else None

    def step() -> None:
        if objective == "ar":
            ar_loss(model, ids, labels).backward()
        else:
            nar_loss(
                model, ids, labels, torch.Generator().manual_seed(0), params.transformer.nar.mask_schedule
            ).backward()

    return counted(step) / model.config.num_positions


# --------------------------------------------------------------------------------------------
# FLOPs of one planned job
# --------------------------------------------------------------------------------------------


def split_sizes(raw: dict[str, Any]) -> dict[str, int]:
    """Images per prepared split: the paper's dataset sizes (supplement Table 3)."""
    from seqgan.report.reference import paper_reference

    table = paper_reference()["hyperparameters"]
    column = table["columns"].index(raw["run"]["name"])
    train = table["tokenizer"]["train_images"][column]
    val = table["tokenizer"]["val_images"][column]
    holdout = raw["data"]["folder"]["val_holdout_fraction"]
    if not val and holdout:
        val = int(round(train * holdout))
        train -= val
    return {"train": int(train), "val": int(val)}


class Costs:
    """FLOPs (and a short note) of every job of one configuration's plan."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.images = split_sizes(raw)
        self._shapes: dict[tuple[str, str], TransformerShape] = {}

    def _fwd(self, what: str) -> int:
        return forward_flops(self.raw, what)

    def _tokenizer_training(self, phase: int, kind: str) -> float:
        settings = self.raw["tokenizer"][f"phase{phase}"]
        gan = self.raw["tokenizer"]["gan"]
        on = tokenizer_step_flops(self.raw, phase, kind, True) if gan["weight"] > 0 else 0
        off = tokenizer_step_flops(self.raw, phase, kind, False)
        iters = settings["iterations"]
        with_gan = max(0, iters - gan["start_step"]) if gan["weight"] > 0 else 0
        return settings["batch_size"] * (with_gan * on + (iters - with_gan) * off)

    def shape(self, size: str, objective: str) -> TransformerShape:
        if (size, objective) not in self._shapes:
            self._shapes[(size, objective)] = transformer_shape(self.raw, size, objective)
        return self._shapes[(size, objective)]

    def _metric_network(self) -> int:
        return self._fwd("inception" if self.raw["evaluation"]["fid_network"] == "inception" else "semantic")

    def job(self, job: Job) -> float:
        w, raw, rule = job.wildcards, self.raw, job.rule
        if rule == "tokenizer_phase1":
            variant = w["variant"]
            kind = "control" if variant == "control" else ("alpha0" if float(variant[5:]) == 0 else "alpha")
            return self._tokenizer_training(1, kind)
        if rule == "tokenizer_phase2":
            return self._tokenizer_training(2, "alpha0" if raw["tokenizer"]["phase2"]["alpha"] == 0 else "alpha")
        if rule in ("train_ar", "train_nar"):
            objective = rule.removeprefix("train_")
            s = self.shape(w["size"], objective)
            o, t = raw["transformer"][objective], raw["transformer"]
            train = o["iterations"] * o["batch_size"] * s.positions * transformer_train_flops_per_token(s)
            val_points = math.ceil(o["iterations"] / t["eval_every"])
            val = (
                val_points
                * t["val_batches"]
                * o["batch_size"]
                * s.positions
                * (transformer_train_flops_per_token(s) / 3)
            )
            return train + val
        if rule == "sample":
            s = self.shape(w["size"], w["objective"])
            n, d, layers, t = s.linear_weights, s.dim, s.layers, s.positions
            if w["objective"] == "ar":
                per_image = 2 * n * t + 2 * layers * d * t * t
            else:
                per_image = raw["transformer"]["nar"]["steps"] * (2 * n * t + 4 * layers * d * t * t)
            decoder = self._fwd("decoder2" if w["decoder"] == "phase2" else "decoder1")
            return raw["evaluation"]["num_samples"] * (per_image + decoder)
        if rule == "encode_tokens":
            return self.images[w["split"]] * self._fwd("encoder")
        if rule == "fid_reference":
            return self.images[w["split"]] * self._metric_network()
        if rule == "eval_tokenizer":
            decoder = self._fwd("decoder2" if "phase2" in job.files("output")[0] else "decoder1")
            vgg = 2 * self._fwd("vgg") if raw["semantic"]["backbone"] == "vgg16" else 2 * self._fwd("semantic")
            return self.images["val"] * (self._fwd("encoder") + decoder + self._metric_network() + vgg)
        if rule == "eval_samples":
            return raw["evaluation"]["num_samples"] * self._metric_network()
        return 0.0  # prepare_data (CPU), figures, tables, claims, model sizes


def gpu_hours(flops: float, gpu: str) -> float:
    return flops / (PEAK_TFLOPS[gpu] * 1e12 * UTILISATION) / 3600


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

# Each paper artefact: the default target that makes it, the configurations whose runs fill it,
# and which of the paper's numbers to show (values read from paper_reference.yaml; a plain string
# where the paper prints no number).
ArtefactValue = tuple[str, tuple[str, ...]] | str
ARTEFACTS: list[tuple[str, str, tuple[str, ...], ArtefactValue]] = [
    ("Supp. Fig. 2 (val. loss vs alpha)", "results/fig2_val_loss.pdf", ("imagenet",), "curves only (no numbers)"),
    ("Fig. 6b (rFID / FID vs alpha)", "results/fig6b_alpha_sweep.pdf", ("imagenet",), "curves only (no numbers)"),
    ("Fig. 4 / Supp. Fig. 3 (AR prediction)", "results/fig3_visualization.pdf", ("imagenet",), "images"),
    ("Supp. Fig. 1 (phase-2 decoder)", "results/fig1_phase2_decoder.pdf", ("imagenet",), "images"),
    (
        "Table 1 (decoder capacity)",
        "results/tables/table1_decoder_capacity.md",
        ("imagenet",),
        ("table1_decoder_capacity", ("attention_x2",)),
    ),
    (
        "Table 2 (reconstruction)",
        "results/tables/table2_reconstruction.md",
        ("imagenet", "ffhq"),
        ("table2_reconstruction", ("seqgan",)),
    ),
    (
        "Table 3 (unconditional)",
        "results/tables/table3_unconditional.md",
        ("ffhq", "lsun_church", "lsun_cat", "lsun_bedroom"),
        ("table3_unconditional", ("seqgan_ar", "seqgan_nar")),
    ),
    (
        "Table 4 (ImageNet conditional)",
        "results/tables/table4_imagenet_conditional.md",
        ("imagenet",),
        ("table4_imagenet_conditional", ("seqgan_ar", "seqgan_ar_l", "seqgan_nar", "seqgan_nar_l")),
    ),
    ("Table 5 (codebook)", "results/tables/table5_codebook.md", ("imagenet",), ("table5_codebook", ("entropy",))),
    (
        "Table 6 (perceptual layers)",
        "results/tables/table6_perceptual_layers.md",
        ("imagenet",),
        ("table6_perceptual_layers", ("low", "sem")),
    ),
    (
        "Fig. 8b (phase-2 decoder FID)",
        "results/tables/fig8b_phase2.md",
        ("imagenet", "ffhq", "lsun_church", "lsun_cat", "lsun_bedroom"),
        ("fig8b_phase2", ("ar_phase2", "nar_phase2")),
    ),
    (
        "Model sizes (Supp. Sec. 1, Table 2)",
        "results/tables/model_sizes.csv",
        ("imagenet",),
        ("model_sizes", ("tokenizer_phase1", "tokenizer_phase2", "transformer_base", "transformer_large")),
    ),
]


def paper_value(spec: ArtefactValue) -> str:
    """The paper's numbers of the chosen rows, as 'row: col value, ...' (from paper_reference.yaml)."""
    if isinstance(spec, str):
        return spec
    from seqgan.report.reference import paper_reference

    table = paper_reference()[spec[0]]
    if spec[0] == "model_sizes":
        return ", ".join(f"{row} {table[row]['parameters_m']}M" for row in spec[1])
    parts = []
    for row in spec[1]:
        cells = [f"{c} {v}" for c, v in zip(table["columns"], table["rows"][row], strict=True) if v is not None]
        parts.append(f"{row}: " + ", ".join(cells))
    return "; ".join(parts)


def describe(jobs: Iterable[Job], costs: Costs) -> tuple[float, str]:
    """Total FLOPs of ``jobs`` and a 'rule xN' summary of those that cost GPU time."""
    total, by_rule = 0.0, collections.Counter()
    flops_by_rule: dict[str, float] = collections.defaultdict(float)
    for job in jobs:
        f = costs.job(job)
        total += f
        if f > 0:
            by_rule[job.rule] += 1
            flops_by_rule[job.rule] += f
    ranked = sorted(by_rule, key=lambda r: -flops_by_rule[r])
    return total, ", ".join(f"{r} x{by_rule[r]} ({100 * flops_by_rule[r] / total:.0f}%)" for r in ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=sorted(p.stem for p in (REPO / "configs").glob("*.yaml")))
    parser.add_argument("--out", type=Path, help="also write the Markdown tables to this file")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    plans, costs = {}, {}
    for name in args.configs:
        print(f"planning {name} ...", file=sys.stderr, flush=True)
        raw, jobs = plan_default_target(REPO / "configs" / f"{name}.yaml")
        plans[name], costs[name] = jobs, Costs(raw)

    peaks = ", ".join(f"{g} {p:g} TFLOP/s" for g, p in PEAK_TFLOPS.items())
    lines = [
        f"GPU-hours at {UTILISATION:.0%} of the dense bf16 peak ({peaks}); FLOPs counted as described in "
        "benchmarks/estimate_gpu_hours.py (no benchmark was run). Each row is the cost of its target "
        "from nothing; rows share tokenizers and transformers, so they do not add up (see the totals).",
        "",
        "| target | paper artefact | paper value | configs | PFLOP | H100-h | A100-h | jobs (share of FLOPs) |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for title, target, configs, spec in ARTEFACTS:
        configs = tuple(c for c in configs if c in plans)
        if not configs:
            continue
        total, notes = 0.0, []
        for name in configs:
            flops, note = describe(upstream(plans[name], target), costs[name])
            total += flops
            notes.append(f"{name}: {note}" if len(configs) > 1 else note)
        lines.append(
            f"| `{target}` | {title} | {paper_value(spec)} | {', '.join(configs)} | {total / 1e15:,.0f} | "
            f"{gpu_hours(total, 'H100'):,.0f} | {gpu_hours(total, 'A100'):,.0f} | {'; '.join(notes)} |"
        )
    lines += [
        "",
        "| config | whole default target (`rule all`) PFLOP | H100-h | A100-h | run.gpus_per_job | "
        "wall-clock h of one training job on run.gpus_per_job H100 / A100 (ideal scaling) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, jobs in plans.items():
        c = costs[name]
        total, _ = describe(jobs, c)
        gpus = c.raw["run"]["gpus_per_job"]
        walls: dict[str, float] = {}
        for job in jobs:
            if job.rule in ("tokenizer_phase1", "tokenizer_phase2", "train_ar", "train_nar"):
                label = job.rule + (f" {job.wildcards['size']}" if "size" in job.wildcards else "")
                walls[label] = max(walls.get(label, 0.0), c.job(job))
        cells = ", ".join(
            f"{label} {gpu_hours(f, 'H100') / gpus:,.0f} / {gpu_hours(f, 'A100') / gpus:,.0f}"
            for label, f in walls.items()
        )
        lines.append(
            f"| {name} | {total / 1e15:,.0f} | {gpu_hours(total, 'H100'):,.0f} | {gpu_hours(total, 'A100'):,.0f} | "
            f"{gpus} | {cells} |"
        )
    checks = []
    for name in plans:
        raw = costs[name].raw
        for objective in raw["transformer"]["objectives"]:
            size = raw["transformer"]["models"][0]
            formula = transformer_train_flops_per_token(costs[name].shape(size, objective))
            measured = counted_transformer_train_flops_per_token(raw, size, objective)
            checks.append(f"{name} {objective} {size}: {formula / 1e9:.2f} vs {measured / 1e9:.2f} GFLOP/token")
        break  # one configuration is enough: the sizes are shared
    lines += [
        "",
        "Transformer training FLOPs per token, formula vs counted forward + backward: " + "; ".join(checks) + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
