"""The CDK app: one HubStack, checked by cdk-nag (AwsSolutions) on every synth.

Synthesize without the CDK CLI: ``python app.py`` (``make synth``) writes the cloud assembly to ``cdk.out``
(or ``-c outdir=...`` through the CLI, ``CDK_OUTDIR``, or ``build_app(outdir=...)``). Context comes from
``cdk.json``; the CLI's own context (``cdk synth -c key=value``) wins over it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, HubConfig, MissingSourceError, SourcePaths
from infra.stack import HubStack

ROOT = Path(__file__).resolve().parent
DEFAULT_OUTDIR = "cdk.out"
# The context keys HubConfig.from_context is given (a key missing here is left at its default). erpPools is
# not passed yet: cdk.json's pools name cdk.json's systems, so `-c erpSystems=...` alone would fail its check.
CONFIG_KEYS = (
    "stackName",
    "erpSystems",
    "crmOrgId",
    "postingMaxConcurrency",
    "sweepMinutes",
    "workerSyncMinutes",
    "assignmentSweepCron",
    "defaultMarginFloor",
)


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | os.PathLike[str] | None = None,
    sources: SourcePaths | None = None,
    nag: bool = True,
) -> tuple[cdk.App, HubStack]:
    """The app and its stack. ``context`` overrides cdk.json; ``nag=False`` leaves cdk-nag to the caller."""
    merged = {**cdk_json_context(), **(context or {})}
    # The CLI passes CDK_OUTDIR and App must then be given no other outdir.
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = merged.get("outdir", DEFAULT_OUTDIR)
    app = cdk.App(context=merged, outdir=str(outdir) if outdir is not None else None)
    config = HubConfig.from_context(
        {key: value for key in CONFIG_KEYS if (value := app.node.try_get_context(key)) is not None}
    )
    stack = HubStack(app, config.stack_name, config=config, sources=sources)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> int:
    try:
        app, stack = build_app()
    except (ConfigError, MissingSourceError) as error:
        print(f"synth failed: {error}", file=sys.stderr)
        return 1
    try:
        app.synth()
    except RuntimeError as error:  # jsii's wrapper; cdk-nag printed its findings above
        if "ValidationFailed" not in str(error):
            raise
        print(
            f"synth failed: cdk-nag findings above (report: {app.outdir}/validation-report.json)",
            file=sys.stderr,
        )
        return 1
    print(f"synthesized {stack.stack_name} into {app.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
