"""Quality gates: a trained stand-in that misses its params floor stops the workflow.

Why: a stand-in that fails quietly poisons everything downstream. The embedded semantic network
once sat at chance for 1,800 of 3,000 steps and ended at 0.887 validation accuracy on one machine;
every perceptual loss, FID and claim was then computed on the weak network and nothing said so.
A gate is checked before the network's weights are written, so a rule that misses it leaves no
output for the next rule to consume (and its resume state stays, so a rerun re-checks in seconds).
"""

from __future__ import annotations

from collections.abc import Sequence


class QualityGateError(RuntimeError):
    """A trained network missed a ``min_*`` gate of params.yaml (reported without a traceback)."""


def require_at_least(what: str, value: float, key: str, threshold: float, tries: Sequence[str], evidence: str) -> None:
    """Raise :class:`QualityGateError` when ``value < threshold``.

    The message names the measured number, the params key and its threshold, where to look
    (``evidence``) and what to try, so the user can act without reading the code.
    """
    if value >= threshold:
        return
    lines = [
        f"quality gate failed: {what} is {value:.4f}, below {key} = {threshold:g}.",
        f"See {evidence}. Nothing downstream was run on this network and its weights were not written.",
        "Try:",
        *(f"  - {t}" for t in tries),
    ]
    raise QualityGateError("\n".join(lines))


__all__ = ["QualityGateError", "require_at_least"]
