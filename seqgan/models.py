"""Trained tokenizers for use outside the workflow: load one from its checkpoint alone.

A tokenizer checkpoint is ``tokenizer.safetensors`` (weights, loaded without executing pickled
code) plus ``tokenizer.json`` (the sidecar: architecture, quantizer, phase-2 attention, resolution,
how it was trained). That is all :func:`load_tokenizer` needs -- no params.yaml::

    import seqgan
    tokenizer = seqgan.load_tokenizer("models/tokenizer/phase1/alpha1.0/seed0")
    ids = tokenizer.encode(images)            # (B, H, W, 3) uint8 -> (B, h, w) code ids
    reconstructions = tokenizer.decode(ids)   # -> (B, H, W, 3) uint8

``seqgan reconstruct`` runs a folder of images through one (:func:`reconstruct_folder`);
``seqgan generate`` samples images from a trained transformer and tokenizer (:func:`generate`),
again from the two checkpoints alone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan.artefacts.checkpoints import load_weights
from seqgan.artefacts.files import atomic_write_bytes, atomic_write_text
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.losses.psnr import mean_psnr, psnr
from seqgan.nets.attention import AttentionSpec
from seqgan.nets.common import eval_mode
from seqgan.nets.transformer import GenerativeTransformer, TransformerConfig
from seqgan.nets.vqgan import VQTokenizer
from seqgan.train.runtime import resolve_device

__all__ = ["Tokenizer", "generate", "load_tokenizer", "load_transformer", "reconstruct_folder"]

WEIGHTS_FILE = "tokenizer.safetensors"
TOKENIZER_KIND = "tokenizer"
TRANSFORMER_FILE = "model.safetensors"
TRANSFORMER_KIND = "transformer"


def _weights_file(path: str | Path, name: str = WEIGHTS_FILE, what: str = "tokenizer") -> Path:
    path = Path(path)
    weights = path / name if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no {what} checkpoint (expected {name} and its .json sidecar)")
    return weights


def network_from_sidecar(config: dict[str, Any]) -> VQTokenizer:
    """The tokenizer network a sidecar's ``config`` describes (architecture, quantizer, attention)."""
    arch, quant, attention = config["architecture"], config["quantizer"], config.get("attention")
    return VQTokenizer(
        base_channels=arch["base_channels"],
        channel_mult=arch["channel_mult"],
        num_res_blocks=arch["num_res_blocks"],
        extra_res_blocks=arch["extra_res_blocks"],
        code_dim=arch["code_dim"],
        codebook_size=arch["codebook_size"],
        num_groups=arch["num_groups"],
        attention=AttentionSpec(**attention) if attention else None,
        beta=quant["beta"],
        entropy_weight=quant["entropy_weight"],
        entropy_temperature=quant["entropy_temperature"],
    )


@dataclass
class Tokenizer:
    """A trained SeQ-GAN tokenizer: uint8 images in, code ids out, and back."""

    net: VQTokenizer
    sidecar: dict[str, Any]
    weights: Path
    device: torch.device

    @property
    def resolution(self) -> int:
        return int(self.sidecar["config"]["resolution"])

    @property
    def grid(self) -> int:
        return self.resolution // int(self.sidecar["config"]["compression"])

    @property
    def codebook_size(self) -> int:
        return int(self.sidecar["config"]["architecture"]["codebook_size"])

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.array(images)  # a writable copy (PIL's arrays are read-only; torch needs writable)
        r = self.resolution
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (r, r, 3):
            raise ValueError(f"images must be (B, {r}, {r}, 3) uint8, got {images.shape} {images.dtype}")
        return images

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 images at the tokenizer's resolution -> (B, h, w) int64 code ids."""
        x = to_model_input(self._check_images(images), self.device)
        with eval_mode(self.net):
            return self.net.encode_ids(x).cpu().numpy()

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """(B, h, w) code ids -> (B, H, W, 3) uint8 images."""
        ids = np.asarray(ids)
        if ids.ndim != 3 or ids.shape[1:] != (self.grid, self.grid) or ids.min() < 0 or ids.max() >= self.codebook_size:
            raise ValueError(
                f"ids must be (B, {self.grid}, {self.grid}) in [0, {self.codebook_size}), got {ids.shape} "
                f"in [{ids.min()}, {ids.max()}]"
            )
        with eval_mode(self.net):
            return to_uint8(self.net.decode_ids(torch.as_tensor(ids, dtype=torch.long, device=self.device)))

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(images))


def load_tokenizer(path: str | Path, device: str | torch.device = "cpu") -> Tokenizer:
    """A trained tokenizer from its checkpoint (a ``tokenizer.safetensors`` file or the directory
    holding it with its sidecar): eval mode, frozen, on ``device`` ("cpu", "cuda" or "auto")."""
    weights = _weights_file(path)
    state, sidecar = load_weights(weights, device="cpu")
    if sidecar.get("kind") != TOKENIZER_KIND:
        raise ValueError(f"{weights}: sidecar kind is {sidecar.get('kind')!r}, expected {TOKENIZER_KIND!r}")
    net = network_from_sidecar(sidecar["config"])
    net.load_state_dict(state, strict=True)
    net.eval().requires_grad_(False)
    dev = resolve_device(device) if isinstance(device, str) else device
    return Tokenizer(net.to(dev), sidecar, weights, dev)


def _read_folder(folder: Path, resolution: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Images of a folder (sorted names), resized and centre-cropped like data preparation;
    the names of files that are no readable image."""
    from seqgan.data.prepare import LoadedImage, is_image_name, load_rgb, resize_center_crop

    names, images, skipped = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p.name)):
        loaded = load_rgb(path, max_image_pixels=89_478_485)
        if not isinstance(loaded, LoadedImage):
            skipped.append(f"{path.relative_to(folder)}: {loaded.reason}")
            continue
        names.append(path.relative_to(folder).as_posix())
        images.append(resize_center_crop(loaded.pixels, resolution))
    if not images:
        raise FileNotFoundError(f"{folder}: no readable images (jpg, png, ...)")
    return names, np.stack(images), skipped


def reconstruct_folder(tokenizer: Tokenizer, images_dir: Path, out_dir: Path, *, batch_size: int = 64) -> Path:
    """Every image of ``images_dir`` (resized and centre-cropped to the tokenizer's resolution)
    through ``tokenizer``: ``out_dir/<name>.png`` per image and ``out_dir/psnr.csv`` (PSNR of each
    reconstruction against its resized input, dB; the printed mean is the reported PSNR,
    :func:`seqgan.losses.psnr.mean_psnr`). Returns the CSV's path."""
    from PIL import Image

    names, images, skipped = _read_folder(Path(images_dir), tokenizer.resolution)
    out_dir = Path(out_dir)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        recon = tokenizer.reconstruct(batch)
        for name, image, value in zip(names[start : start + batch_size], recon, psnr(recon, batch), strict=True):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            atomic_write_bytes(out_dir / Path(name).with_suffix(".png"), buffer.getvalue())
            rows.append({"image": name, "psnr_db": f"{float(value):.4f}"})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["image", "psnr_db"])
    writer.writeheader()
    writer.writerows(rows)
    table = out_dir / "psnr.csv"
    atomic_write_text(table, text.getvalue())
    r = tokenizer.resolution
    mean = mean_psnr(np.array([float(row["psnr_db"]) for row in rows]), r, r)
    print(f"{out_dir}: {len(rows)} reconstructions, mean PSNR {mean:.2f} dB ({table})")
    for line in skipped:
        print(f"skipped {line}")
    return table


def load_transformer(path: str | Path, device: str | torch.device = "cpu") -> tuple[GenerativeTransformer, dict]:
    """A trained AR / NAR transformer from its checkpoint (``model.safetensors`` or its directory)
    and its sidecar (objective, size, config): eval mode, frozen, on ``device``."""
    weights = _weights_file(path, TRANSFORMER_FILE, "transformer")
    state, sidecar = load_weights(weights, device="cpu")
    if sidecar.get("kind") != TRANSFORMER_KIND:
        raise ValueError(f"{weights}: sidecar kind is {sidecar.get('kind')!r}, expected {TRANSFORMER_KIND!r}")
    model = GenerativeTransformer(TransformerConfig(**sidecar["config"]))
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return model.to(resolve_device(device) if isinstance(device, str) else device), sidecar


def generate(
    transformer_path: str | Path,
    tokenizer_path: str | Path,
    out_dir: str | Path,
    *,
    objective: str,
    num_samples: int,
    seed: int,
    sampling: dict[str, Any],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """``num_samples`` images from a trained transformer decoded by a trained tokenizer, written as a
    sample folder (PNGs, token grids, labels, a manifest recording the checkpoints and ``sampling``).

    ``sampling``: AR ``{temperature, top_k, top_p}``, NAR ``{steps, temperature, schedule}``, as
    :func:`seqgan.sample.generate.generate_samples` takes them. A class-conditional transformer gets
    the samples spread evenly over its classes."""
    from seqgan.artefacts.files import file_sha256
    from seqgan.sample.generate import even_class_counts, generate_samples

    tokenizer = load_tokenizer(tokenizer_path, device)
    transformer, sidecar = load_transformer(transformer_path, tokenizer.device)
    if sidecar.get("objective") != objective:
        raise ValueError(f"{transformer_path}: a {sidecar.get('objective')} transformer, not {objective}")
    config = transformer.config
    if config.vocab_size != tokenizer.codebook_size or config.seq_len != tokenizer.grid**2:
        raise ValueError(
            f"{transformer_path}: trained on {config.vocab_size} codes x {config.seq_len} tokens, but the tokenizer "
            f"{tokenizer.weights} has {tokenizer.codebook_size} codes on a {tokenizer.grid}x{tokenizer.grid} grid"
        )
    counts = even_class_counts(num_samples, config.num_classes) if config.num_classes else None
    weights = _weights_file(transformer_path, TRANSFORMER_FILE, "transformer")
    meta = {
        "transformer_checkpoint": {"file": str(weights), "sha256": file_sha256(weights)},
        "tokenizer_checkpoint": {
            "file": str(tokenizer.weights),
            "sha256": file_sha256(tokenizer.weights),
            "phase": tokenizer.sidecar.get("phase"),
        },
    }
    return generate_samples(
        transformer,
        tokenizer.net,
        objective=sidecar["objective"],
        num_samples=num_samples,
        batch_size=batch_size,
        seed=seed,
        out_dir=Path(out_dir),
        sampling=sampling,
        class_counts=counts,
        meta=meta,
        device=tokenizer.device,
        progress=True,
    )
