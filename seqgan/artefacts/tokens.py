"""Token-id arrays of a split (the transformers' training data) and the baselines reported with them.

On-disk layout of a token split directory (written by :func:`write_token_split`; encoded by
:func:`seqgan.evaluate.tokens.encode_split`)::

    tokens.npy     (N, h, w) uint16 code ids, row-major like the tokenizer's grid
    labels.npy     (N,) int64 class ids, copied from the image split
    manifest.json  count, grid_h, grid_w, codebook_size, dtype, SHA-256 of the token and label
                   arrays (of their C-order bytes, not of the .npy files) and the caller's metadata
                   (tokenizer checkpoint identity, source split ...)

uint16 halves the size of int32 ids and covers every codebook up to K = 65536 (the paper's is
1024); a larger K is refused. The arrays are written first and the manifest last, each atomically,
so a directory with a manifest is complete. :func:`open_token_split` memory-maps the tokens.

Baselines, reported beside every transformer validation loss (a design decision of the project), in nats per token:

* ``token_entropy(ids, K)`` -- plug-in entropy of the code histogram, H = -sum_k p_k log p_k.
* ``unigram_cross_entropy(train_ids, val_ids, K)`` -- the loss of a model that ignores context and
  class: -mean over validation tokens of log q(v), with q the add-one (Laplace) smoothed unigram
  distribution of the training tokens, q_k = (n_k + 1) / (N + K). A transformer's validation
  cross-entropy should be compared with this number; by Gibbs' inequality it is >= the
  validation tokens' own entropy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqgan.artefacts.files import (
    MANIFEST_FILE,
    atomic_write,
    atomic_write_text,
    read_manifest,
)

__all__ = [
    "MAX_CODEBOOK_SIZE",
    "TokenSplit",
    "open_token_split",
    "token_counts",
    "token_entropy",
    "unigram_cross_entropy",
    "write_token_split",
]

FORMAT_VERSION = 1
TOKENS_FILE = "tokens.npy"
LABELS_FILE = "labels.npy"
TOKEN_DTYPE = np.uint16
MAX_CODEBOOK_SIZE = int(np.iinfo(TOKEN_DTYPE).max) + 1  # 65536
_COUNT_CHUNK = 1 << 22  # token ids counted at once (bounded memory on memory-mapped arrays)
_RESERVED_KEYS = frozenset(
    {
        "format_version",
        "count",
        "grid_h",
        "grid_w",
        "codebook_size",
        "dtype",
        "tokens_file",
        "labels_file",
        "tokens_sha256",
        "labels_sha256",
    }
)


def check_codebook_size(codebook_size: int) -> int:
    k = int(codebook_size)
    if not 1 <= k <= MAX_CODEBOOK_SIZE:
        raise ValueError(
            f"codebook_size = {k}: token arrays are stored as uint16, which holds K <= {MAX_CODEBOOK_SIZE} codes"
        )
    return k


def _array_sha256(array: np.ndarray, chunk_rows: int = 4096) -> str:
    """SHA-256 of an array's C-order bytes (streamed, so memory-mapped arrays stay on disk)."""
    h = hashlib.sha256()
    for start in range(0, len(array), chunk_rows):
        h.update(np.ascontiguousarray(array[start : start + chunk_rows]).tobytes())
    return h.hexdigest()


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # np.save appends ".npy" to a path without it; a buffer avoids that
        np.save(buffer, array, allow_pickle=False)
        tmp.write_bytes(buffer.getvalue())

    atomic_write(path, write)


def write_token_split(
    out_dir: str | os.PathLike[str],
    ids: np.ndarray,
    labels: np.ndarray,
    meta: Mapping[str, Any],
    *,
    codebook_size: int,
) -> dict[str, Any]:
    """Write ``tokens.npy``, ``labels.npy`` and ``manifest.json`` (last); return the manifest.

    ``meta`` (JSON-serialisable) is merged into the manifest; it should identify the tokenizer
    checkpoint (file, sha256, step) and the source split. Its keys may not shadow the format's own.
    """
    k = check_codebook_size(codebook_size)
    ids = np.asarray(ids)
    labels = np.asarray(labels)
    if ids.ndim != 3:
        raise ValueError(f"ids must be (N, h, w), got shape {ids.shape}")
    if ids.dtype != TOKEN_DTYPE:
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ValueError(f"ids outside [0, {k})")
        ids = ids.astype(TOKEN_DTYPE)
    if ids.size and int(ids.max()) >= k:
        raise ValueError(f"ids outside [0, {k}): max {int(ids.max())}")
    if labels.shape != (ids.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be ({ids.shape[0]},) integers, got {labels.shape} {labels.dtype}")
    labels = labels.astype(np.int64)
    clash = _RESERVED_KEYS & set(meta)
    if clash:
        raise ValueError(f"meta keys {sorted(clash)} are reserved for the token split's own fields")
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "count": int(ids.shape[0]),
        "grid_h": int(ids.shape[1]),
        "grid_w": int(ids.shape[2]),
        "codebook_size": k,
        "dtype": np.dtype(TOKEN_DTYPE).name,
        "tokens_file": TOKENS_FILE,
        "labels_file": LABELS_FILE,
        "tokens_sha256": _array_sha256(ids),
        "labels_sha256": _array_sha256(labels),
        **dict(meta),
    }
    text = json.dumps(manifest, indent=2) + "\n"  # fails before any file on non-JSON meta
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # a rewrite is incomplete until the new one lands
    _save_npy(out / TOKENS_FILE, np.ascontiguousarray(ids))
    _save_npy(out / LABELS_FILE, labels)
    atomic_write_text(out / MANIFEST_FILE, text)
    return manifest


@dataclass(frozen=True)
class TokenSplit:
    """An opened token split: ``tokens`` (N, h, w) uint16 memory map, ``labels`` (N,) int64."""

    directory: Path
    tokens: np.ndarray
    labels: np.ndarray
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def codebook_size(self) -> int:
        return int(self.manifest["codebook_size"])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.manifest["grid_h"]), int(self.manifest["grid_w"])


def open_token_split(directory: str | os.PathLike[str], *, verify: bool = False) -> TokenSplit:
    """Open a split written by :func:`write_token_split`, checking its files agree.

    Always checked: manifest present and of this format, shapes and dtypes of both arrays against
    it. ``verify=True`` also re-hashes both arrays and checks every id is < codebook_size (reads
    all the tokens).
    """
    directory = Path(directory)
    manifest_path, manifest = read_manifest(
        directory, missing="a complete token split (run the token-encoding rule first)", format_version=FORMAT_VERSION
    )
    n, h, w = int(manifest["count"]), int(manifest["grid_h"]), int(manifest["grid_w"])
    tokens_path = directory / manifest["tokens_file"]
    labels_path = directory / manifest["labels_file"]
    tokens = np.load(tokens_path, mmap_mode="r", allow_pickle=False)
    if tokens.shape != (n, h, w) or tokens.dtype != np.dtype(manifest["dtype"]):
        raise ValueError(
            f"{tokens_path}: {tokens.shape} {tokens.dtype}, manifest says ({n}, {h}, {w}) "
            f"{manifest['dtype']} (a partial or foreign copy?)"
        )
    labels = np.load(labels_path, allow_pickle=False)
    if labels.shape != (n,):
        raise ValueError(f"{labels_path}: shape {labels.shape}, expected ({n},)")
    if verify:
        for path, array, key in (
            (tokens_path, tokens, "tokens_sha256"),
            (labels_path, labels, "labels_sha256"),
        ):
            if _array_sha256(array) != manifest[key]:
                raise ValueError(f"{path}: content hash differs from {manifest_path} ({key})")
        k = int(manifest["codebook_size"])
        if n and int(_chunked_max(tokens)) >= k:
            raise ValueError(f"{tokens_path}: ids >= codebook_size {k}")
    return TokenSplit(directory=directory, tokens=tokens, labels=labels, manifest=manifest)


def _chunked_max(ids: np.ndarray) -> int:
    flat = ids.reshape(-1)
    return max(int(flat[s : s + _COUNT_CHUNK].max()) for s in range(0, flat.size, _COUNT_CHUNK))


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def token_counts(ids: np.ndarray, codebook_size: int) -> np.ndarray:
    """(K,) int64 histogram of the ids (any shape, memory-mapped arrays counted in chunks)."""
    k = int(codebook_size)
    if k < 1:
        raise ValueError(f"codebook_size must be positive, got {k}")
    flat = np.asarray(ids).reshape(-1)
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {flat.dtype}")
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, flat.size, _COUNT_CHUNK):
        chunk = flat[start : start + _COUNT_CHUNK].astype(np.int64)
        if chunk.min() < 0 or chunk.max() >= k:
            raise ValueError(f"ids outside [0, {k}): min {chunk.min()}, max {chunk.max()}")
        counts += np.bincount(chunk, minlength=k)
    return counts


def token_entropy(ids: np.ndarray, codebook_size: int) -> float:
    """Plug-in entropy (nats) of the code histogram of ``ids``."""
    counts = token_counts(ids, codebook_size)
    total = counts.sum()
    if total == 0:
        raise ValueError("no tokens")
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def unigram_cross_entropy(train_ids: np.ndarray, val_ids: np.ndarray, codebook_size: int) -> float:
    """Nats per validation token under the add-one smoothed unigram distribution of the train ids."""
    train = token_counts(train_ids, codebook_size)
    val = token_counts(val_ids, codebook_size)
    if val.sum() == 0:
        raise ValueError("no validation tokens")
    log_q = np.log(train + 1.0) - np.log(train.sum() + float(codebook_size))  # (K,)
    return float(-(val * log_q).sum() / val.sum())
