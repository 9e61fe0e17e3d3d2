"""Phase-1 tokenizer variants by name: ``alpha<value>`` of the sweep, the ``control`` without
perceptual loss and the ``noentropy`` control without the entropy regulariser."""

from __future__ import annotations

from seqgan.config import NO_ENTROPY_VARIANT, Params, no_entropy_alpha


def phase1_variant(alpha: float | None) -> str:
    """Name of a phase-1 tokenizer: ``alpha<str(alpha)>`` (str() as DVC prints floats) or ``control``."""
    return "control" if alpha is None else f"alpha{alpha}"


def parse_phase1_variant(params: Params, variant: str) -> tuple[float, bool]:
    """``alpha0.5`` -> (0.5, perceptual on); ``control`` -> (0.0, perceptual off); ``noentropy`` ->
    (the sweep's smallest alpha, perceptual on; trained with
    :func:`seqgan.config.without_entropy_regulariser`)."""
    if variant == NO_ENTROPY_VARIANT:
        if not params.tokenizer.control_no_entropy:
            raise SystemExit("error: tokenizer.control_no_entropy is false; there is no noentropy tokenizer")
        return no_entropy_alpha(params), True
    if variant == "control":
        if not params.tokenizer.control_no_perceptual:
            raise SystemExit("error: tokenizer.control_no_perceptual is false; there is no control tokenizer")
        return 0.0, False
    known = {phase1_variant(a): a for a in params.tokenizer.alphas}
    if variant not in known:
        raise SystemExit(f"error: unknown tokenizer variant {variant!r}; params give {', '.join(known)} (+ control)")
    return known[variant], True
