"""Every ASL file parses, is deployed as written, and has a substitution for each of its placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infra.stack_view import ROOT, Synth

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
ASL_FILES = sorted((ROOT / "statemachines").glob("*.asl.json"))


def test_there_is_at_least_one_state_machine_file() -> None:
    assert ASL_FILES


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_asl_parses_as_json_with_states(path: Path) -> None:
    definition = json.loads(path.read_text())
    assert definition["StartAt"] in definition["States"]


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    synth: Synth, path: Path
) -> None:
    text = path.read_text()
    machines = [
        m["Properties"]
        for m in synth.of_type("AWS::StepFunctions::StateMachine").values()
        if m["Properties"].get("DefinitionString") == text
    ]
    assert len(machines) == 1, (
        f"{path.name} is not deployed verbatim by exactly one state machine (infra/workflow.py)"
    )
    placeholders = set(PLACEHOLDER.findall(text))
    substitutions = set(machines[0].get("DefinitionSubstitutions", {}))
    missing, unused = sorted(placeholders - substitutions), sorted(substitutions - placeholders)
    assert placeholders == substitutions, f"without substitution: {missing}; unused: {unused}"
