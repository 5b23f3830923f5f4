"""One synthesized hub stack per test session (a synth takes seconds), shared by every infra test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.stack_view import ROOT, Synth

LAYERS = ROOT / "build" / "layers"


def require_layers() -> None:
    if not (LAYERS / "deps" / "python").is_dir() or not (LAYERS / "hub" / "python" / "hub").is_dir():
        pytest.fail(
            "build/layers is missing: run `make layer` (python -m local.build_layer) first", pytrace=False
        )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The stack exactly as app.py builds it, without the cdk-nag plugin (test_nag runs the pack itself)."""
    require_layers()
    from aws_cdk.assertions import Template

    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(outdir=outdir, nag=False)
    template = Template.from_stack(stack)
    as_json = template.to_json()
    yield Synth(app, stack, template, as_json["Resources"], as_json.get("Outputs", {}), outdir)
