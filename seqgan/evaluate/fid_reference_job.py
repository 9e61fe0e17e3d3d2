"""`seqgan fid-reference`: FID reference statistics of a prepared split (rule ``fid_reference``)."""

from __future__ import annotations

from pathlib import Path

from seqgan.artefacts.images import open_image_store
from seqgan.config import Params
from seqgan.evaluate.fid import compute_reference, save_reference
from seqgan.evaluate.networks import fid_network, load_judge, load_semantic
from seqgan.train.runtime import resolve_device, set_threads


def fid_reference_job(
    params: Params, *, split_dir: Path, semantic: str | None, out: Path, threads: int, judge: str | None = None
) -> None:
    set_threads(threads)
    device = resolve_device(params.run.device)
    store = open_image_store(split_dir)
    semantic_net = load_semantic(params, semantic, device) if params.evaluation.fid_network == "semantic" else None
    network = fid_network(params, semantic_net, semantic, device, load_judge(params, judge, device), judge)
    name = f"{params.data.name}/{Path(split_dir).name}"
    reference = compute_reference(store, network, name=name, batch_size=params.evaluation.batch_size, progress=True)
    save_reference(out, reference.mu, reference.sigma, reference.meta)
    print(f"{out}: {reference.meta['count']} images, {reference.meta['feature_dim']}-d {network.name} features")
