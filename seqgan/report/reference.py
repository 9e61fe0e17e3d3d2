"""The paper's reference numbers (seqgan/report/paper_reference.yaml), loaded once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REFERENCE_PATH = Path(__file__).with_name("paper_reference.yaml")


@cache
def paper_reference() -> dict[str, Any]:
    return yaml.safe_load(REFERENCE_PATH.read_text())
