"""`seqgan prepare-data`: one prepared split (rule ``prepare_data``) -- the embedded synthetic set,
or an image folder / LSUN LMDB with a held-out validation fraction when there is no val folder."""

from __future__ import annotations

from pathlib import Path

from seqgan.config import Params


def prepare_split(params: Params, split: str, out: Path) -> dict:
    """Write the split; return its manifest."""
    data = params.data
    if data.source == "synthetic":
        from seqgan.data.synthetic import write_synthetic_split

        count = data.synthetic.train_images if split == "train" else data.synthetic.val_images
        manifest = write_synthetic_split(
            out,
            num_images=count,
            resolution=data.resolution,
            num_classes=data.synthetic.num_classes,
            seed=data.synthetic.seed,
            split=split,
        )
    else:
        manifest = _prepare_real_split(params, split, out)
    print(f"{out}: {manifest['count']} images, {manifest['num_classes']} classes, sha256 {manifest['sha256'][:12]}")
    return manifest


def _prepare_real_split(params: Params, split: str, out: Path) -> dict:
    from seqgan.data.prepare import prepare_image_folder, prepare_lsun_lmdb

    folder = params.data.folder
    if split == "val" and folder.val_dir:
        src, subset, fraction = folder.val_dir, "all", 0.0
    elif split == "val":
        src, subset, fraction = folder.train_dir, "holdout", folder.val_holdout_fraction
    else:
        src = folder.train_dir
        subset = "train" if not folder.val_dir and folder.val_holdout_fraction > 0 else "all"
        fraction = folder.val_holdout_fraction if subset == "train" else 0.0
    common = dict(
        resolution=params.data.resolution,
        max_image_pixels=folder.max_image_pixels,
        small_images=folder.small_images,
        subset=subset,
        holdout_fraction=fraction,
    )
    if params.data.source == "lsun_lmdb":
        return prepare_lsun_lmdb(src, out, **common)
    return prepare_image_folder(src, out, layout=folder.layout, workers=folder.workers, **common)
