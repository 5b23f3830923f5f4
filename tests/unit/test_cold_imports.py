"""What a function's module costs at import (its cold start): boto3 is imported when AWS is first called, never
by importing the hub's flow modules (``make bench`` measures the milliseconds; this pins the rule)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAYERS = Path(__file__).resolve().parents[2] / "layers"


@pytest.mark.parametrize(
    "module",
    [
        "hub.planning",
        "hub.ledger",
        "hub.flows.initiation.steps",
        "hub.flows.workforce.consumer",
        "hub.flows.workforce.repricing",
        "hub.flows.posting.service",
    ],
)
def test_importing_a_flow_module_does_not_import_boto3(module: str) -> None:
    probe = f"import sys; import {module}; print('boto3' in sys.modules)"
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(LAYERS)},
    )
    assert answer.stdout.strip() == "False"
