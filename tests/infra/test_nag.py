"""cdk-nag (AwsSolutions) on the stack, and the reasons behind every acknowledgement.

cdk-nag 3.x is a CDK policy-validation plugin: its findings fail ``app.synth()`` (warnings included) and are
written to the validation report, not to construct annotations. So the pack is run here on the same
construct tree app.py builds, and its findings are asserted directly.
"""

from __future__ import annotations

import re

from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from tests.infra.stack_view import Synth


def _findings(synth: Synth) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(synth.app)
    return [
        f"{violation.severity} {violation.rule_name}: {violation.description} "
        f"@ {[r.construct_path for r in violation.violating_resources]}"
        for violation in report.violations
    ]


def test_aws_solutions_checks_report_nothing_unacknowledged(synth: Synth) -> None:
    assert _findings(synth) == []


def test_cdk_reports_no_error_annotations(synth: Synth) -> None:
    errors = Annotations.from_stack(synth.stack).find_error("*", Match.any_value())
    assert errors == []


def test_the_pack_does_find_what_is_not_acknowledged(synth: Synth) -> None:
    """Guards the test above: a fresh, unacknowledged stack with the hub's L1 choice is reported."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
    )
    rules = {v.rule_name for v in AwsSolutionsChecks().validate_scope(app).violations}
    assert {
        "AwsSolutions-L1",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    } <= rules


def test_every_acknowledgement_carries_a_reason(synth: Synth) -> None:
    acknowledged: dict[str, dict[str, str]] = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged[construct.node.path] = dict(entry.data)
    assert acknowledged, "no acknowledgement found: the metadata key changed?"
    for path, rules in acknowledged.items():
        for rule, reason in rules.items():
            rule_id = re.sub(r"^annotation::", "", rule, flags=re.IGNORECASE)
            assert rule_id.startswith("AwsSolutions-"), (path, rule)
            assert len(reason.split()) >= 8, f"{path} {rule}: give the reason, not a label"
