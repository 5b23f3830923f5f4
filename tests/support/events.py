"""One loader for the real sample events in ``tests/events``."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


@cache
def _raw(name: str) -> str:
    return (EVENTS / name).read_text()


def load_json(name: str) -> Any:
    """A fresh copy of ``tests/events/<name>`` parsed as JSON (tests may mutate it)."""
    return copy.deepcopy(json.loads(_raw(name)))


def load_text(name: str) -> str:
    return _raw(name)
