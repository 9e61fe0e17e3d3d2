"""Supplement Fig. 1: the same tokens decoded by the phase-1 and the phase-2 decoder.

Phase 2 freezes the encoder and the codebook, so a token grid means the same codes for both
decoders; only the decoder (conv-only in phase 1, with block-regional + dilated attention and
trained with L_per^{alpha=0} in phase 2) differs. The figure shows

* generated token grids (the AR samples of the phase-1 tokenizer the phase-2 decoder was built
  from), decoded by each decoder -- the paper's claim is that phase 2 restores colour and detail;
* real validation images, their phase-1 token grids decoded by each decoder, and the originals,
  with the per-image PSNR of both reconstructions in a CSV beside the figure -- the same question
  asked where a ground truth exists.

Both decoders see exactly the same integer ids: the ids are decoded, never re-encoded. A phase-2
tokenizer whose encoder or codebook differs from the phase-1 one is refused (the ids would name
other codes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqgan.artefacts.files import atomic_write_text, file_sha256
from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.samples import open_sample_set
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.config import Params
from seqgan.losses.psnr import psnr
from seqgan.nets.common import eval_mode
from seqgan.report.labels import run_label
from seqgan.report.sample_grids import GridLayout, save_image_grid
from seqgan.train.runtime import resolve_device, set_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint

__all__ = ["Fig1Panels", "check_same_tokens", "decode_ids", "fig1_panels", "plot_fig1", "psnr_table"]

FROZEN_PREFIXES = ("encoder.", "quantizer.")


def check_same_tokens(phase1: nn.Module, phase2: nn.Module) -> None:
    """Refuse two tokenizers whose encoder or codebook differ (their ids would not be comparable)."""
    s1, s2 = phase1.state_dict(), phase2.state_dict()
    keys1 = sorted(k for k in s1 if k.startswith(FROZEN_PREFIXES))
    keys2 = sorted(k for k in s2 if k.startswith(FROZEN_PREFIXES))
    if keys1 != keys2:
        raise ValueError("the two tokenizers have different encoder / codebook layouts")
    differ = [k for k in keys1 if not torch.equal(s1[k].cpu(), s2[k].cpu())]
    if differ:
        raise ValueError(
            f"the phase-2 tokenizer's encoder / codebook differ from the phase-1 tokenizer's "
            f"({len(differ)} tensors, e.g. {differ[0]}): it was not built from this phase-1 "
            "tokenizer, so the same ids name different codes"
        )


def decode_ids(tokenizer: nn.Module, ids: np.ndarray, device: torch.device) -> np.ndarray:
    """(n, h, w) integer ids -> (n, H, W, 3) uint8 images, eval mode, no_grad."""
    tokenizer.to(device)
    with eval_mode(tokenizer):
        grid = torch.from_numpy(np.asarray(ids).astype(np.int64)).to(device)
        return to_uint8(tokenizer.decode_ids(grid))


@dataclass(frozen=True)
class Fig1Panels:
    """Everything the figure shows (uint8 images) and the PSNR it reports."""

    sample_phase1: np.ndarray  # (n, H, W, 3)
    sample_phase2: np.ndarray
    val_original: np.ndarray  # (m, H, W, 3)
    val_phase1: np.ndarray
    val_phase2: np.ndarray
    val_ids: np.ndarray  # (m, h, w) phase-1 token ids of the validation images
    psnr_phase1: np.ndarray  # (m,) dB
    psnr_phase2: np.ndarray

    @property
    def sample_decoder_difference(self) -> float:
        """Mean absolute difference (0..255) between the two decodings of the sample grids."""
        return float(np.abs(self.sample_phase2.astype(np.float64) - self.sample_phase1).mean())


def fig1_panels(
    phase1: nn.Module,
    phase2: nn.Module,
    sample_ids: np.ndarray,
    val_images: np.ndarray,
    device: str | torch.device = "cpu",
) -> Fig1Panels:
    """Decode ``sample_ids`` (n, h, w) with both decoders; encode ``val_images`` (m, H, W, 3) uint8
    with the (shared) phase-1 encoder and decode those ids with both decoders."""
    check_same_tokens(phase1, phase2)
    dev = torch.device(device)
    val_images = np.asarray(val_images)
    phase1.to(dev)
    with eval_mode(phase1):
        val_ids = phase1.encode_ids(to_model_input(val_images, dev))  # (m, h, w)
    val_ids = val_ids.cpu().numpy()
    val1, val2 = decode_ids(phase1, val_ids, dev), decode_ids(phase2, val_ids, dev)
    return Fig1Panels(
        sample_phase1=decode_ids(phase1, sample_ids, dev),
        sample_phase2=decode_ids(phase2, sample_ids, dev),
        val_original=val_images,
        val_phase1=val1,
        val_phase2=val2,
        val_ids=val_ids,
        psnr_phase1=psnr(val1, val_images),
        psnr_phase2=psnr(val2, val_images),
    )


def psnr_table(
    panels: Fig1Panels, indices: Sequence[int], labels: Sequence[int], class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per validation image: index in the split, label, PSNR (dB, inf = identical) of both decoders."""
    table = pd.DataFrame(
        {
            "val_index": [int(i) for i in indices],
            "label": [int(c) for c in labels],
            "psnr_phase1_db": panels.psnr_phase1,
            "psnr_phase2_db": panels.psnr_phase2,
        }
    )
    table["psnr_gain_db"] = table.psnr_phase2_db - table.psnr_phase1_db
    if class_names is not None:
        table.insert(2, "class_name", [class_names[c] if 0 <= c < len(class_names) else "" for c in table.label])
    return table


def plot_fig1(
    panels: Fig1Panels, out_pdf: str | Path, *, title: str, caption: str, sample_label: str = "sample"
) -> GridLayout:
    """Five rows: generated ids by decoder 1 / 2, then validation originals and both reconstructions."""
    rows = [
        (f"{sample_label}, phase-1 decoder", panels.sample_phase1),
        (f"{sample_label}, phase-2 decoder", panels.sample_phase2),
        ("val, original", panels.val_original),
        (f"val, phase-1 ({np.mean(panels.psnr_phase1):.1f} dB)", panels.val_phase1),
        (f"val, phase-2 ({np.mean(panels.psnr_phase2):.1f} dB)", panels.val_phase2),
    ]
    return save_image_grid(rows, out_pdf, title=title, caption=caption)


def fig1_job(
    params: Params,
    *,
    samples_dir: Path,
    phase1: Path,
    phase2: Path,
    val_dir: Path,
    out: Path,
    threads: int,
) -> None:
    """`seqgan fig1`: supplement Fig. 1 and its per-image PSNR CSV (rule ``fig1_phase2_decoder``)."""
    set_threads(threads)
    device = resolve_device(params.run.device)
    tok1, side1 = load_tokenizer_checkpoint(phase1, params, device)
    tok2, side2 = load_tokenizer_checkpoint(phase2, params, device)
    if side1.get("phase") != 1 or side2.get("phase") != 2:
        raise SystemExit(
            f"error: --phase1 {phase1} is phase {side1.get('phase')}, --phase2 {phase2} is phase {side2.get('phase')}"
        )
    samples = open_sample_set(samples_dir)
    decoded_with = (samples.manifest.get("tokenizer_checkpoint") or {}).get("sha256")
    if decoded_with and decoded_with != file_sha256(phase1):
        raise SystemExit(
            f"error: the samples in {samples_dir} were decoded with another tokenizer than "
            f"{phase1}; their ids belong to that tokenizer's codebook"
        )
    store = open_image_store(val_dir)
    columns = params.evaluation.sample_grid.columns
    n, m = min(columns, len(samples)), min(columns, len(store))
    tokens = np.load(samples.directory / "tokens.npy")[:n]
    try:
        panels = fig1_panels(tok1, tok2, tokens, np.array(store.images[:m]), device)
    except ValueError as exc:
        raise SystemExit(f"error: {phase2}: {exc}") from None
    out = Path(out)
    csv_path = out.with_suffix(".csv")
    objective = str(samples.manifest.get("objective", "")).upper()
    caption = (
        f"Rows 1-2: the first {n} token grids of {objective} samples (seed {samples.seed}; {samples_dir}) "
        f"decoded by the phase-1 decoder ({phase1}, alpha {side1.get('alpha')}) and by the phase-2 "
        f"decoder ({phase2}, alpha {side2.get('alpha')}); mean |phase 2 - phase 1| = "
        f"{panels.sample_decoder_difference:.1f} / 255.\n"
        f"Rows 3-5: the first {m} images of {val_dir}, their phase-1 token grids decoded by each decoder; "
        f"mean PSNR {np.mean(panels.psnr_phase1):.2f} dB (phase 1) vs {np.mean(panels.psnr_phase2):.2f} dB "
        f"(phase 2), per image in {csv_path.name}. {run_label(params)}."
    )
    plot_fig1(
        panels,
        out,
        title="Supplement Fig. 1: the same tokens through the phase-1 and phase-2 decoders",
        caption=caption,
        sample_label=f"{objective} sample",
    )
    table = psnr_table(panels, range(m), store.labels[:m], store.class_names)
    atomic_write_text(csv_path, table.to_csv(index=False))
    print(table.to_string(index=False))
