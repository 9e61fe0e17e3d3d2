"""bf16 autocast in sampling and decoding (what ``generate_samples`` runs on CUDA) agrees with fp32.

The GPU runs these paths under ``torch.autocast("cuda", torch.bfloat16)``; here the same code runs
under CPU bf16 autocast, which rounds to the same format (the kernels differ, the precision does
not). The models are trained for a few dozen steps first, so their distributions are peaked and
their images structured: bf16 errors grow with the size of the activations, and a random network
would hide them.

Stated tolerances (seqgan/sample/generate.py gives the reasons and the numbers measured on the
embedded default's trained models: total variation 0.0035 mean / 0.013 max, pixels 0.18 / 2 levels;
on the small models trained here: 0.0018 / 0.0049 and 0.17 / 2 levels):

- next-token distributions (AR teacher-forced, AR through the KV cache, NAR at masked positions):
  total variation <= 0.01 on average and <= 0.05 at worst;
- decoded images: <= 0.5 uint8 levels on average and <= 4 at worst.

Sequences drawn in the two precisions are not compared: one different draw changes every later
token, so equality of samples is not a property either precision has against the other.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from test_distributed import token_ids, tokenizer_raw, transformer_raw

from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.config import validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.nets.common import eval_mode
from seqgan.sample.ar import sample_ar
from seqgan.train.distributed import Distributed
from seqgan.train.runtime import precision_of
from seqgan.train.tokenizer import TokenizerRun
from seqgan.train.tokenizer_model import prepare_tokenizer
from seqgan.train.transformer import TransformerRun, training_mask

CPU = Distributed.single(torch.device("cpu"))
TV_MEAN, TV_MAX = 0.01, 0.05
PIXEL_MEAN, PIXEL_MAX = 0.5, 4


def bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def single_process(raw: dict) -> object:
    raw = copy.deepcopy(raw)
    raw["run"].update(gpus_per_job=1, accumulation_steps=1)
    return validate_params(raw)


def trained_transformer(objective: str, steps: int = 100):
    """A 2-layer transformer after ``steps`` steps on a learnable token chain."""
    raw = transformer_raw(objective)
    raw["transformer"][objective].update(iterations=steps, decay_start=steps)  # constant lr
    params = single_process(raw)
    ids = torch.from_numpy(token_ids(512, seed=1).reshape(512, 16))
    torch.manual_seed(0)
    run = TransformerRun(params, objective, "base", CPU)
    for step in range(steps):
        batch = ids[(step * 32) % 512 :][:32]
        mask = training_mask(0, step, 32, 16, params.transformer.nar.mask_schedule) if objective == "nar" else None
        run.set_lr(step)
        run.train_step(batch, None, mask, step)
    return run.model.eval()


def total_variation(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logits_a.float().softmax(-1) - logits_b.float().softmax(-1)).abs().sum(-1)


def assert_distributions_close(fp32: torch.Tensor, bf: torch.Tensor, what: str) -> None:
    tv = total_variation(fp32, bf)
    assert float(tv.mean()) <= TV_MEAN and float(tv.max()) <= TV_MAX, (
        f"{what}: total variation mean {float(tv.mean()):.4f} max {float(tv.max()):.4f}"
    )


def test_precision_is_bf16_on_cuda_only() -> None:
    assert precision_of(torch.device("cuda", 0)) == "bf16 autocast"
    assert precision_of(torch.device("cpu")) == "fp32"


def test_ar_next_token_distributions_agree_with_fp32() -> None:
    model = trained_transformer("ar")
    with torch.no_grad():
        check_ar_paths(model)


def check_ar_paths(model) -> None:
    ids = torch.from_numpy(token_ids(64, seed=9).reshape(64, 16))
    fp32 = model(ids, None)
    assert float(total_variation(fp32, torch.full_like(fp32, 0.0)).mean()) > 0.5  # peaked: it learned
    with bf16():
        full = model(ids, None)
        # the sampler's path: prefill the condition token, then one cached token per step
        cache = model.allocate_cache(64)
        assert cache.keys.dtype == torch.bfloat16  # follows autocast, so cached keys meet bf16 queries
        prefix = model.condition_tokens(64, None)
        steps = [model.prefill(prefix, cache)[:, -1]]
        steps += [model.decode_one(ids[:, t - 1], t, cache) for t in range(1, 16)]
    assert full.dtype == torch.bfloat16
    assert_distributions_close(fp32, full, "AR teacher-forced")
    assert_distributions_close(fp32, torch.stack(steps, dim=1), "AR through the KV cache")


def test_nar_masked_distributions_agree_with_fp32() -> None:
    model = trained_transformer("nar")
    ids = torch.from_numpy(token_ids(64, seed=9).reshape(64, 16))
    mask = training_mask(3, 0, 64, 16, "cosine")
    inputs = ids.masked_fill(mask, model.special_id)
    with torch.no_grad():
        fp32 = model(inputs, None)
        with bf16():
            bf = model(inputs, None)
    assert_distributions_close(fp32[mask], bf[mask], "NAR masked positions")


def test_bf16_ar_sampling_draws_valid_codes() -> None:
    model = trained_transformer("ar", steps=20)
    with bf16():
        ids = sample_ar(model, 8, None, 1.0, 0, 0.98, torch.Generator().manual_seed(0), use_cache=True)
    assert ids.shape == (8, 16) and int(ids.min()) >= 0 and int(ids.max()) < 16


@pytest.fixture(scope="module")
def trained_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("bf16") / "train"
    write_synthetic_split(data, 64, 16, 10, seed=7, split="train")
    images = np.array(open_image_store(data).images)
    raw = tokenizer_raw()
    raw["tokenizer"]["gan"]["weight"] = 0.0
    params = single_process(raw)
    torch.manual_seed(0)
    run = TokenizerRun(params, 1, prepare_tokenizer(params, 1, None), None, CPU)
    run.set_modes()
    x = to_model_input(images, torch.device("cpu")).contiguous(memory_format=torch.channels_last)
    for step in range(40):
        run.train_step(x[(step % 4) * 16 :][:16], step)
    return run.tokenizer.eval(), images


@torch.no_grad()
def test_decoding_agrees_with_fp32(trained_tokenizer) -> None:
    tokenizer, images = trained_tokenizer
    with eval_mode(tokenizer):
        ids = tokenizer.encode_ids(to_model_input(images, torch.device("cpu")))
        fp32 = to_uint8(tokenizer.decode_ids(ids)).astype(int)
        with bf16():
            bf = to_uint8(tokenizer.decode_ids(ids)).astype(int)
    assert fp32.std() > 10  # structured images, not a flat colour
    diff = np.abs(fp32 - bf)
    assert diff.mean() <= PIXEL_MEAN and diff.max() <= PIXEL_MAX, f"pixels differ {diff.mean():.3f} mean, {diff.max()}"
