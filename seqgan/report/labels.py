"""How a figure, table or caption names the run it shows.

By the data set (``data.name``) and the params (``run.name``), never the run name alone: a user who
trains on a folder of their own photos under the embedded default's run name should not read
"embedded" above a figure of their photos.
"""

from __future__ import annotations

from seqgan.config import Params


def run_label(params: Params) -> str:
    """``"<data.name> data, <run.name> params"``, e.g. ``"shapes32 data, embedded params"``."""
    return f"{params.data.name} data, {params.run.name} params"
