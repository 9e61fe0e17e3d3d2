"""Generation metrics of a sample set: FID, Inception Score, and the semantic classifier's view.

Input: a sample directory written by :func:`seqgan.sample.generate.generate_samples`
(``images/*.png``, ``labels.npy``, ``tokens.npy``, ``manifest.json``). The PNGs are what is
measured -- the same uint8 images clean-fid would read from the folder -- streamed in batches, so
a 50,000-image set never sits in memory at once.

What is computed, and how (every record says it again):

* **FID**: features of all samples through the configured feature network (clean-fid's in-memory
  path, :mod:`seqgan.evaluate.fid`) against precomputed reference statistics of a prepared split.
  The reference must have been computed with the same network and weights
  (:func:`~seqgan.evaluate.fid.check_reference_matches`); a network that does not resize its input
  also needs samples at the reference images' resolution.
* **Inception Score**: only for a class-conditional model measured with the Inception network --
  the paper reports IS for ImageNet only, and an IS of the embedded 10-class classifier would not
  be comparable with anything. Otherwise ``null`` with the reason beside it.
* **Classifier view** (when the feature network has a classifier head and is not Inception, i.e.
  the embedded default): the semantic classifier's softmax on every sample -- mean of the max
  probability, fraction of samples whose max probability is >= ``confident_threshold``
  (evaluation.verdicts.confident_probability), and the histogram of predicted classes -- and the
  same numbers on real images of the reference split (``num_samples`` images evenly spaced through
  the split, so a split stored class by class is still sampled across classes). This is the
  evidence behind a statement like "the samples are shapes the semantic network cannot classify":
  a low confident fraction or a skewed histogram next to the real images' numbers. For a
  class-conditional model also the fraction of samples classified as their conditioning class.
* **Histogram noise floor**: a confident classifier is not enough -- on the embedded default the
  small transformers' "texture soup" is classified as confidently as real images, but into a
  skewed set of classes. How far apart two predicted-class histograms of N images drift by chance
  alone is measured on real images: a seeded random pool of 2N reference images is split into two
  disjoint halves of N, again and again (evaluation.verdicts.histogram_noise_draws), and the mean
  TV distance between the halves' histograms is recorded beside the samples' TV distance. (A split
  with fewer than 2N images is resampled with replacement instead -- the bootstrap version of the
  same quantity.) Two independent random sets drift at least as far as samples from the real
  distribution would from the evenly spaced reference images, so the floor errs on the side of
  calling a sample set "like real images".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqgan.artefacts.samples import SampleSet
from seqgan.evaluate.fid import (
    RESIZE_NONE,
    FeatureNetwork,
    ReferenceStatistics,
    check_reference_matches,
    class_probabilities_of_images,
    features_of_images,
    fid_from_features,
    inception_score,
)
from seqgan.train.classifier import evenly_spaced

__all__ = [
    "check_sample_resolution",
    "classifier_view",
    "evaluate_generation",
    "histogram_noise_floor",
    "histogram_tv_distance",
    "inception_score_skip_reason",
    "reference_classifier_view",
    "reference_histogram_noise_floor",
]


def inception_score_skip_reason(conditional: bool, network: FeatureNetwork, fid_network: str) -> str | None:
    """Why IS is not computed for this model and network, or None when it is."""
    if not conditional:
        return "not computed: the model is unconditional (the paper reports IS for class-conditional ImageNet only)"
    if fid_network != "inception":
        return (
            f"not computed: evaluation.fid_network = {fid_network!r}; an IS of the "
            f"{network.classes or network.name} is not comparable with the Inception Score"
        )
    if network.class_probabilities is None:
        return f"not computed: feature network {network.name!r} has no classifier head"
    return None


def classifier_view(probs: np.ndarray, confident_threshold: float, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Summary of (N, C) class probabilities: mean max probability, confident fraction, histogram.

    ``labels`` (N,) (class ids; -1 = none): adds ``label_agreement``, the fraction of images whose
    predicted class is their label.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities must be (N >= 1, C), got shape {p.shape}")
    if not 0.0 < confident_threshold <= 1.0:
        raise ValueError(f"confident_threshold must be in (0, 1], got {confident_threshold}")
    max_prob = p.max(axis=1)
    predicted = p.argmax(axis=1)
    out: dict[str, Any] = {
        "count": int(len(p)),
        "mean_max_prob": float(max_prob.mean()),
        "confident_fraction": float(np.mean(max_prob >= confident_threshold)),
        "predicted_class_histogram": np.bincount(predicted, minlength=p.shape[1]).astype(int).tolist(),
    }
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(p),):
            raise ValueError(f"labels must be ({len(p)},), got {labels.shape}")
        if (labels >= 0).all():
            out["label_agreement"] = float(np.mean(predicted == labels))
    return out


def histogram_tv_distance(a: list[int] | np.ndarray, b: list[int] | np.ndarray) -> float:
    """Total-variation distance 0.5 * sum |p - q| between two normalised count histograms."""
    p, q = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError(f"need two non-empty histograms of one length, got {p.shape}, {q.shape}")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def histogram_noise_floor(
    predicted: np.ndarray, num_classes: int, set_size: int, *, draws: int, rng: np.random.Generator
) -> dict[str, Any]:
    """TV distance between the predicted-class histograms of two independent sets of ``set_size``
    real images, over ``draws`` random draws: the distance sampling noise alone produces.

    ``predicted`` (M,): the predicted classes of a pool of real images. With M >= 2 * set_size,
    each draw splits a random permutation of the first 2 * set_size into two disjoint halves;
    otherwise each draw takes two sets of ``set_size`` with replacement (bootstrap).
    """
    pool = np.asarray(predicted, np.int64)
    if set_size < 1 or draws < 1 or len(pool) < 1:
        raise ValueError(f"need set_size >= 1, draws >= 1 and a non-empty pool, got {set_size}, {draws}, {len(pool)}")
    disjoint = len(pool) >= 2 * set_size
    values = np.empty(draws, np.float64)
    for d in range(draws):
        if disjoint:
            picked = pool[rng.permutation(len(pool))[: 2 * set_size]]
            a, b = picked[:set_size], picked[set_size:]
        else:
            a, b = rng.choice(pool, set_size), rng.choice(pool, set_size)
        values[d] = histogram_tv_distance(np.bincount(a, minlength=num_classes), np.bincount(b, minlength=num_classes))
    method = (
        f"two disjoint random halves of {set_size} out of a pool of {len(pool)} real images"
        if disjoint
        else f"two sets of {set_size} drawn with replacement from {len(pool)} real images (the split has "
        f"fewer than {2 * set_size})"
    )
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if draws > 1 else None,
        "q95": float(np.quantile(values, 0.95)),
        "draws": int(draws),
        "set_size": int(set_size),
        "method": method,
    }


def reference_histogram_noise_floor(
    store: Any,
    network: FeatureNetwork,
    *,
    set_size: int,
    draws: int,
    seed: int,
    batch_size: int,
) -> dict[str, Any]:
    """:func:`histogram_noise_floor` of the reference split: the semantic classifier's predictions on
    a random pool of min(2 * set_size, len(store)) real images (drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    count = min(2 * set_size, len(store))
    index = np.sort(rng.choice(len(store), size=count, replace=False))
    probs = class_probabilities_of_images(np.asarray(store.images[index]), network, batch_size=batch_size)
    floor = histogram_noise_floor(probs.argmax(axis=1), probs.shape[1], set_size, draws=draws, rng=rng)
    floor["seed"] = int(seed)
    return floor


def check_sample_resolution(samples: SampleSet, reference: ReferenceStatistics, network: FeatureNetwork) -> None:
    """A network without resize sees images at their stored size: samples and reference must agree."""
    if network.resize != RESIZE_NONE:
        return
    ref_res = (reference.meta.get("source") or {}).get("resolution")
    sample_res = samples.manifest.get("resolution")
    if ref_res is None or sample_res is None:
        return
    if list(sample_res) != [int(ref_res), int(ref_res)]:
        raise ValueError(
            f"samples in {samples.directory} are {sample_res[0]}x{sample_res[1]} px, the reference "
            f"{reference.meta.get('name')!r} was computed on {ref_res} px images, and "
            f"{network.name} does not resize: the FID would compare different inputs"
        )


def reference_classifier_view(
    store: Any,
    network: FeatureNetwork,
    reference: ReferenceStatistics,
    *,
    num_images: int,
    confident_threshold: float,
    batch_size: int,
) -> dict[str, Any]:
    """:func:`classifier_view` of ``num_images`` real images evenly spaced through the reference
    split (``store``, checked against the reference's recorded source hash), with their labels."""
    recorded = (reference.meta.get("source") or {}).get("sha256")
    actual = (getattr(store, "manifest", None) or {}).get("sha256")
    if recorded and actual and recorded != actual:
        raise ValueError(
            f"{getattr(store, 'directory', 'split')}: content sha256 {actual[:12]}... differs from "
            f"the reference statistics' source {recorded[:12]}...; pass the split the reference was "
            "computed on"
        )
    index = evenly_spaced(len(store), num_images)
    images = np.asarray(store.images[index])  # (n, H, W, 3) uint8
    probs = class_probabilities_of_images(images, network, batch_size=batch_size)
    view = classifier_view(probs, confident_threshold, np.asarray(store.labels)[index])
    if "label_agreement" in view:  # real images: agreement with the true label is the accuracy
        view["accuracy"] = view.pop("label_agreement")
    view["selection"] = f"{len(index)} images evenly spaced over the {len(store)} of the split"
    view["directory"] = str(getattr(store, "directory", ""))
    return view


def evaluate_generation(
    samples: SampleSet,
    network: FeatureNetwork,
    reference: ReferenceStatistics,
    *,
    fid_network: str,
    batch_size: int,
    inception_score_splits: int,
    confident_threshold: float,
    histogram_noise_draws: int,
    reference_store: Any | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """FID, IS (or the reason it is null) and the classifier view of a sample set (module docstring).

    ``fid_network``: evaluation.fid_network ("semantic" | "inception"). ``inception_score_splits``,
    ``confident_threshold``, ``histogram_noise_draws``: evaluation.verdicts.inception_score_splits,
    .confident_probability, .histogram_noise_draws. ``reference_store``: the prepared split the
    reference statistics were computed on; needed for the classifier view's real-image numbers and
    the histogram noise floor (embedded default), ignored otherwise. The noise floor's random pool
    is seeded with the sample set's sampling seed, so the record follows from the sample set alone.
    """
    if len(samples) < 2:
        raise ValueError(f"{samples.directory}: {len(samples)} sample(s); FID needs at least 2")
    check_reference_matches(reference, network)
    check_sample_resolution(samples, reference, network)
    skip = inception_score_skip_reason(samples.conditional, network, fid_network)
    want_classifier = network.class_probabilities is not None and fid_network != "inception"
    if want_classifier and reference_store is None:
        raise ValueError("the classifier view needs the reference split (reference_store)")

    features = features_of_images(samples.batches(batch_size), network, progress=progress)
    fid = fid_from_features(features, reference)

    probs = None
    if skip is None or want_classifier:
        probs = class_probabilities_of_images(samples.batches(batch_size), network, progress=progress)

    if skip is None:
        is_mean, is_std = inception_score(probs, splits=inception_score_splits)
        is_note = (
            f"exp(E KL(p(y|x) || p(y))) with {network.classes}, mean and std over "
            f"{inception_score_splits} consecutive splits of the {len(samples)} samples"
        )
    else:
        is_mean = is_std = None
        is_note = skip

    classifier: dict[str, Any] | None
    if want_classifier:
        labels = samples.labels if samples.conditional else None
        classifier = {
            "name": network.name,
            "classes": network.classes,
            **classifier_view(probs, confident_threshold, labels),
            "confident_threshold": confident_threshold,
            "definition": (
                "softmax of the classifier head on each sample; mean_max_prob = mean over samples "
                "of the largest class probability; confident_fraction = fraction with largest "
                f"probability >= {confident_threshold}; predicted_class_histogram = samples per "
                "argmax class (index = class id); label_agreement (class-conditional only) = "
                "fraction classified as the class they were sampled for; histogram_tv_distance = "
                "total-variation distance (0..1) between the normalised predicted-class histograms of "
                "the samples and of the reference images; histogram_noise_floor = the same distance "
                "between two independent sets of as many real images of the reference split (mean over "
                "random draws, see its method): what sampling noise alone produces"
            ),
        }
        classifier["reference"] = reference_classifier_view(
            reference_store,
            network,
            reference,
            num_images=len(samples),
            confident_threshold=confident_threshold,
            batch_size=batch_size,
        )
        classifier["histogram_tv_distance"] = histogram_tv_distance(
            classifier["predicted_class_histogram"], classifier["reference"]["predicted_class_histogram"]
        )
        classifier["histogram_noise_floor"] = reference_histogram_noise_floor(
            reference_store,
            network,
            set_size=len(samples),
            draws=histogram_noise_draws,
            seed=samples.seed,
            batch_size=batch_size,
        )
        classifier_note = None
    else:
        classifier = None
        classifier_note = (
            "not computed: the classifier view is the embedded semantic network's (fid_network = "
            "semantic); Inception's 1008 ImageNet classes say nothing about this data set's classes"
            if fid_network == "inception"
            else f"not computed: feature network {network.name!r} has no classifier head"
        )

    ref_meta = reference.meta
    return {
        "fid": fid,
        "fid_definition": (
            f"Frechet distance between {network.name} features of the {len(samples)} samples and the "
            f"reference statistics {ref_meta.get('name')!r} ({reference.count} images, "
            f"{ref_meta.get('selection', 'selection not recorded')}), clean-fid's frechet_distance"
        ),
        "inception_score": is_mean,
        "inception_score_std": is_std,
        "inception_score_note": is_note,
        "inception_score_splits": inception_score_splits if skip is None else None,
        "classifier": classifier,
        "classifier_note": classifier_note,
        "num_samples": len(samples),
        "feature_network": network.describe(),
    }
