"""The outcomes a verdict rule can give, and how a claim's parts combine into its verdict.

Every rule module of this package returns one of these strings; ``seqgan.report.claims`` reads
the inputs and renders the Markdown. The precedence (``combine``): any part *does not hold* ->
does not hold; else any *not run*; else any *not testable at this scale*; else any *undecided at
this scale*; else *holds*.
"""

from __future__ import annotations

from collections.abc import Iterable

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_RUN = "not run"
NOT_TESTABLE = "not testable at this scale"
UNDECIDED = "undecided at this scale"
_PRECEDENCE = (DOES_NOT_HOLD, NOT_RUN, NOT_TESTABLE, UNDECIDED)

# Outcomes of one generation-FID comparison (from -> to) against the spread over sampling seeds.
LOWER = "lower"
HIGHER = "higher"
WITHIN_SPREAD = "within the seed spread"
SPREAD_UNKNOWN = "spread unknown (one sampling seed)"


def combine(verdicts: Iterable[str]) -> str:
    verdicts = list(verdicts)
    for verdict in _PRECEDENCE:
        if verdict in verdicts:
            return verdict
    return HOLDS
