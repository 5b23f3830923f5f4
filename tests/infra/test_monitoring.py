"""Alarms in business terms, each routed to the audience that acts on it; encrypted TLS-only topics; the
operations dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.config import AUDIENCES, ConfigError, alarm_emails_from_context
from tests.infra.stack_view import ROOT, Synth, as_list, function_by_name, render

SALES_OPS, ENGINEERS, FINANCE_OPS, DELIVERY_MANAGERS = AUDIENCES
PREFIX = "pshub"
# The whole routing table: adding, removing or re-routing an alarm is a decision this test makes visible.
EXPECTED_AUDIENCE = {
    "pshub-parked-deals": SALES_OPS,
    "pshub-initiation-failed": SALES_OPS,
    "pshub-initiation-timed-out": ENGINEERS,
    "pshub-initiation-throttled": ENGINEERS,
    "pshub-webhook-rejections": ENGINEERS,
    "pshub-webhook-errors": ENGINEERS,
    "pshub-api-server-errors": ENGINEERS,
    "pshub-parked-entries": FINANCE_OPS,
    "pshub-parked-margins": FINANCE_OPS,
    **{
        f"pshub-{name.replace('_', '-')}-{kind}": ENGINEERS
        for name in (
            "crm_webhook",
            "transactions_api",
            "initiation_steps",
            "initiation_starter",
            "psa_webhook",
            "posting_sweep",
            "posting_consumer",
            "worker_sync",
            "worker_consumer",
            "margin_consumer",
            "assignment_sweep",
        )
        for kind in ("errors", "throttles")
    },
}
# What a sales-ops or finance-ops reader should not have to decode in an alert.
JARGON = re.compile(
    r"ApproximateNumberOf|Executions?(Failed|TimedOut|Throttled)|5XXError|\bThrottles\b|\bErrors\b|"
    r"\bDLQ\b|\bEMF\b|AWS/|Namespace|Dimension"
)


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarm name -> properties."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def _topic_ids(synth: Synth) -> dict[str, str]:
    """Audience -> logical id of its topic (topics are named ``<stack>-<audience>``)."""
    return {
        t["Properties"]["TopicName"].removeprefix(f"{PREFIX}-"): logical_id
        for logical_id, t in synth.of_type("AWS::SNS::Topic").items()
    }


def _dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def _logical_id(synth: Synth, resource_type: str, **properties: Any) -> str:
    (found,) = [
        k
        for k, r in synth.of_type(resource_type).items()
        if all(r["Properties"].get(key) == value for key, value in properties.items())
    ]
    return found


# --- routing --------------------------------------------------------------------------------------------


def test_there_is_one_topic_per_audience(synth: Synth) -> None:
    assert set(_topic_ids(synth)) == set(AUDIENCES)


def test_every_alarm_tells_its_audience_when_it_fires_and_when_it_clears(synth: Synth) -> None:
    alarms, topics = _alarms(synth), _topic_ids(synth)
    assert set(alarms) == set(EXPECTED_AUDIENCE)
    for name, alarm in alarms.items():
        topic = {"Ref": topics[EXPECTED_AUDIENCE[name]]}
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name
        assert alarm.get("ActionsEnabled", True) is True, name


def test_finance_ops_hear_only_about_entries_that_did_not_post_and_margins_their_data_blocks(
    synth: Synth,
) -> None:
    finance_topic = {"Ref": _topic_ids(synth)[FINANCE_OPS]}
    to_finance = {name for name, a in _alarms(synth).items() if finance_topic in a["AlarmActions"]}
    assert to_finance == {"pshub-parked-entries", "pshub-parked-margins"}


def test_no_alarm_goes_to_the_delivery_managers_whose_topic_carries_margin_alerts(synth: Synth) -> None:
    """Delivery managers hear about margins below their floor from the margin consumer, never about the
    platform: their topic is the one the consumer publishes to."""
    topic_id = _topic_ids(synth)[DELIVERY_MANAGERS]
    assert not [name for name, a in _alarms(synth).items() if {"Ref": topic_id} in a["AlarmActions"]]
    _, consumer = function_by_name(synth, "margin_consumer")
    assert consumer["Properties"]["Environment"]["Variables"]["ALERTS_TOPIC_ARN"] == {"Ref": topic_id}


def test_sales_ops_hear_only_about_deals_that_did_not_become_projects(synth: Synth) -> None:
    sales_topic = {"Ref": _topic_ids(synth)[SALES_OPS]}
    to_sales = {name for name, a in _alarms(synth).items() if sales_topic in a["AlarmActions"]}
    assert to_sales == {"pshub-parked-deals", "pshub-initiation-failed"}


def test_every_description_says_what_happened_who_is_affected_and_what_to_do(synth: Synth) -> None:
    for name, alarm in _alarms(synth).items():
        description = alarm["AlarmDescription"]
        assert len(description) <= 1024, name  # CloudWatch's limit
        parts = re.fullmatch(r"What happened: (.+) Who is affected: (.+) What to do: (.+)", description)
        assert parts, f"{name}: {description}"
        assert all(len(part.split()) >= 5 for part in parts.groups()), f"{name}: {description}"
        assert not JARGON.search(description), f"{name}: {JARGON.search(description)} in {description}"
        assert alarm["MetricName"] not in description, name


def test_sales_ops_alerts_say_how_to_find_fix_and_redrive_the_deal(synth: Synth) -> None:
    alarms = _alarms(synth)
    for name in ("pshub-parked-deals", "pshub-initiation-failed"):
        description = alarms[name]["AlarmDescription"]
        assert "python -m local.ops parked" in description, name
        assert "Salesforce" in description, name
        assert "python -m local.ops redrive" in description, name
    assert "GET /v1/transactions/{correlationId}" in alarms["pshub-parked-deals"]["AlarmDescription"]


def test_the_ops_commands_named_in_alerts_exist() -> None:
    """The descriptions send people to `python -m local.ops parked|redrive`: those commands must exist."""
    ops = (ROOT / "local" / "ops.py").read_text()
    assert '@cli.command("parked")' in ops
    assert '@cli.command("redrive")' in ops


def test_no_datapoint_means_nothing_happened(synth: Synth) -> None:
    for name, alarm in _alarms(synth).items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert alarm["EvaluationPeriods"] == 1, name
        assert "Metrics" not in alarm, f"{name}: one metric per alarm, no metric math"


# --- what each alarm watches ----------------------------------------------------------------------------


def test_parked_deals_alarm_watches_the_intake_dlq_the_workflow_parks_into(synth: Synth) -> None:
    dlq_id = _logical_id(synth, "AWS::SQS::Queue", QueueName=f"{PREFIX}-intake-dlq")
    alarm = _alarms(synth)["pshub-parked-deals"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert _dimensions(alarm) == {"QueueName": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
    assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Maximum", 1, 300)
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["DefinitionSubstitutions"]["ParkedQueueUrl"] == {"Ref": dlq_id}


def test_parked_margins_alarm_watches_the_margin_dlq_and_says_how_finance_unblocks_it(synth: Synth) -> None:
    dlq_id = _logical_id(synth, "AWS::SQS::Queue", QueueName=f"{PREFIX}-margin-dlq")
    alarm = _alarms(synth)["pshub-parked-margins"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert _dimensions(alarm) == {"QueueName": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
    assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Maximum", 1, 300)
    description = alarm["AlarmDescription"]
    for words in ("FX rate", "billing schedule", "delivery managers", "parkedReason", "redrive"):
        assert words in description, words


def test_workflow_alarms_watch_the_project_initiation_state_machine(synth: Synth) -> None:
    (machine_id,) = synth.of_type("AWS::StepFunctions::StateMachine")
    alarms = _alarms(synth)
    expected = {
        "pshub-initiation-failed": ("ExecutionsFailed", 900),
        "pshub-initiation-timed-out": ("ExecutionsTimedOut", 900),
        "pshub-initiation-throttled": ("ExecutionThrottled", 300),
    }
    for name, (metric, period) in expected.items():
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", metric), name
        assert _dimensions(alarm) == {"StateMachineArn": {"Ref": machine_id}}, name
        assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 1, period), name


def test_parked_executions_fail_so_the_failed_executions_alarm_sees_them() -> None:
    """The sales-ops alarm counts FAILED executions: the ASL must end a parked transaction in a Fail state."""
    definition = json.loads((ROOT / "statemachines" / "project_initiation.asl.json").read_text())
    fails = {s.get("Error") for s in definition["States"].values() if s["Type"] == "Fail"}
    assert "TransactionParked" in fails


def test_webhook_alarms_read_the_metrics_the_crm_webhook_emits(synth: Synth) -> None:
    _, webhook = function_by_name(synth, "crm_webhook")
    variables = webhook["Properties"]["Environment"]["Variables"]
    handler = (ROOT / "functions" / "crm_webhook" / "handler.py").read_text()
    alarms = _alarms(synth)
    for name, metric, threshold in (
        ("pshub-webhook-rejections", "WebhookRejected", 10),
        ("pshub-webhook-errors", "WebhookErrors", 1),
    ):
        alarm = alarms[name]
        assert f'name="{metric}"' in handler, f"crm_webhook no longer emits {metric}"
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            variables["POWERTOOLS_METRICS_NAMESPACE"],
            metric,
        )
        assert _dimensions(alarm) == {"service": variables["POWERTOOLS_SERVICE_NAME"]}, name
        assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", threshold, 300), name
    assert "signature or payload changed" in alarms["pshub-webhook-rejections"]["AlarmDescription"]


def test_every_function_has_an_errors_and_a_throttles_alarm(synth: Synth) -> None:
    alarms = _alarms(synth)
    functions = synth.of_type("AWS::Lambda::Function")
    assert functions
    for logical_id, function in functions.items():
        name = function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for metric, kind in (("Errors", "errors"), ("Throttles", "throttles")):
            alarm = alarms[f"pshub-{name.replace('_', '-')}-{kind}"]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert _dimensions(alarm) == {"FunctionName": {"Ref": logical_id}}
            assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)


def test_api_server_errors_alarm_watches_the_hub_api(synth: Synth) -> None:
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    alarm = _alarms(synth)["pshub-api-server-errors"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    assert _dimensions(alarm) == {"ApiName": api["Properties"]["Name"]}
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)


# --- topics ---------------------------------------------------------------------------------------------


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["Statement"]


def test_topics_refuse_publishing_without_tls(synth: Synth) -> None:
    topics = _topic_ids(synth)
    guarded: set[str] = set()
    for policy in synth.of_type("AWS::SNS::TopicPolicy").values():
        for statement in _statements(policy["Properties"]["PolicyDocument"]):
            if (
                statement["Effect"] == "Deny"
                and statement["Principal"] in ("*", {"AWS": "*"})
                and "sns:Publish" in as_list(statement["Action"])
                and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            ):
                guarded |= {ref["Ref"] for ref in policy["Properties"]["Topics"]}
                assert as_list(statement["Resource"]) == policy["Properties"]["Topics"]
    assert guarded == set(topics.values())


def test_topics_are_encrypted_with_a_rotated_key_cloudwatch_may_use(synth: Synth) -> None:
    (key_id, key), *others = synth.of_type("AWS::KMS::Key").items()
    assert not others
    assert key["Properties"]["EnableKeyRotation"] is True
    for logical_id in _topic_ids(synth).values():
        topic = synth.resources[logical_id]["Properties"]
        # alias/aws/sns would not do: its policy cannot let CloudWatch alarms publish.
        assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}, logical_id
    (grant,) = [
        s
        for s in _statements(key["Properties"]["KeyPolicy"])
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert grant["Effect"] == "Allow"
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_cloudwatch_may_use_key_and_topics_only_for_this_stacks_alarms(synth: Synth) -> None:
    """The grants match alarms by name prefix: an alarm outside it would fire and reach nobody."""
    (key,) = synth.of_type("AWS::KMS::Key").values()
    grants = [
        s
        for s in _statements(key["Properties"]["KeyPolicy"])
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    for policy in synth.of_type("AWS::SNS::TopicPolicy").values():
        allows = [
            s
            for s in _statements(policy["Properties"]["PolicyDocument"])
            if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert [as_list(s["Action"]) for s in allows] == [["sns:Publish"]]
        grants += allows
    assert len(grants) == 1 + len(AUDIENCES)
    for grant in grants:
        condition = grant["Condition"]
        assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        pattern = render(condition["ArnLike"]["aws:SourceArn"])
        assert pattern == f"arn:aws:cloudwatch:<region>:<account>:alarm:{PREFIX}-*"
    for name in _alarms(synth):
        assert re.fullmatch(re.escape(PREFIX) + r"-.+", name), f"{name} is outside the granted alarm names"


def test_the_margin_consumers_role_policy_is_enough_to_publish_delivery_manager_alerts(synth: Synth) -> None:
    """Its role may publish and use the key (test_iam); nothing in the key's or the topic's policy stands in the
    way: the key lets the account's IAM policies grant it, and the topic denies only plain HTTP."""
    (key,) = synth.of_type("AWS::KMS::Key").values()
    (account,) = [
        s
        for s in _statements(key["Properties"]["KeyPolicy"])
        if render(s.get("Principal", {}).get("AWS", "")) == "arn:aws:iam::<account>:root"
    ]
    assert (account["Effect"], account["Action"]) == ("Allow", "kms:*")
    topic = {"Ref": _topic_ids(synth)[DELIVERY_MANAGERS]}
    (policy,) = [
        p for p in synth.of_type("AWS::SNS::TopicPolicy").values() if p["Properties"]["Topics"] == [topic]
    ]
    denies = [s for s in _statements(policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_nobody_is_subscribed_by_default_and_the_topics_are_outputs(synth: Synth) -> None:
    assert synth.of_type("AWS::SNS::Subscription") == {}
    topics = _topic_ids(synth)
    for audience in AUDIENCES:
        output = "".join(part.capitalize() for part in audience.split("-")) + "TopicArn"
        assert synth.outputs[output]["Value"] == {"Ref": topics[audience]}, output


def test_alarm_emails_context_subscribes_each_audience(tmp_path) -> None:
    from aws_cdk.assertions import Template

    from app import build_app

    _, stack = build_app(
        {
            "alarmEmails": json.dumps(
                {
                    SALES_OPS: ["salesops@example.com", "finance@example.com"],
                    ENGINEERS: ["oncall@example.com"],
                    DELIVERY_MANAGERS: ["delivery@example.com"],
                }
            )
        },
        outdir=tmp_path,
        nag=False,
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    topics = {
        logical_id: r["Properties"]["TopicName"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::SNS::Topic"
    }
    subscribed = {
        (topics[r["Properties"]["TopicArn"]["Ref"]], r["Properties"]["Endpoint"])
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["Protocol"] == "email"
    }
    assert subscribed == {
        ("pshub-sales-ops", "salesops@example.com"),
        ("pshub-sales-ops", "finance@example.com"),
        ("pshub-integration-engineers", "oncall@example.com"),
        ("pshub-delivery-managers", "delivery@example.com"),
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ({}, {}),
        ("", {}),
        ({"sales-ops": "a@example.com"}, {"sales-ops": ("a@example.com",)}),
        ('{"integration-engineers": ["b@example.com"]}', {"integration-engineers": ("b@example.com",)}),
        ({"sales-ops": []}, {}),
    ],
)
def test_alarm_emails_context_forms(value: Any, expected: dict) -> None:
    assert alarm_emails_from_context(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"sales": ["a@example.com"]}, "unknown audience 'sales'"),
        ({"sales-ops": ["not-an-address"]}, "not an email address"),
        ({"sales-ops": ["a@example.com", "a@example.com"]}, "duplicates"),
        ({"sales-ops": {"a": 1}}, "give a list"),
        ("{not json", "not JSON"),
        (["a@example.com"], "give {audience: [emails]}"),
    ],
)
def test_alarm_emails_context_errors_say_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        alarm_emails_from_context(value)


# --- dashboard ------------------------------------------------------------------------------------------


def _dashboard(synth: Synth) -> dict[str, Any]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"{PREFIX}-operations"
    return json.loads(render(dashboard["Properties"]["DashboardBody"]))


def _graphed(body: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Widget title -> (namespace, metric name) of each metric it draws."""
    graphed: dict[str, set[tuple[str, str]]] = {}
    for widget in body["widgets"]:
        properties = widget["properties"]
        for metric in properties.get("metrics", []):
            names = [part for part in metric if isinstance(part, str)]
            namespace, name = names[0], names[1]
            graphed.setdefault(properties.get("title", ""), set()).add((namespace, name))
    return graphed


def test_dashboard_shows_the_business_flow_and_the_platform_health(synth: Synth) -> None:
    graphed = _graphed(_dashboard(synth))
    drawn = set().union(*graphed.values())
    assert {
        (PREFIX, "OpportunityDeliveries"),
        (PREFIX, "WebhookRejected"),
        (PREFIX, "InitiationStarts"),
        (PREFIX, "InitiationDuplicates"),
        ("AWS/States", "ExecutionsStarted"),
        ("AWS/States", "ExecutionsSucceeded"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/ApiGateway", "Latency"),
    } <= drawn
    assert graphed["CRM deliveries: accepted vs rejected"] >= {
        (PREFIX, "OpportunityDeliveries"),
        (PREFIX, "WebhookRejected"),
    }
    assert graphed["Project initiation: starts vs duplicates"] == {
        (PREFIX, "InitiationStarts"),
        (PREFIX, "InitiationDuplicates"),
    }


def test_dashboard_parked_deals_graph_is_the_intake_dlq(synth: Synth) -> None:
    dlq_id = _logical_id(synth, "AWS::SQS::Queue", QueueName=f"{PREFIX}-intake-dlq")
    (widget,) = [
        w for w in _dashboard(synth)["widgets"] if w["properties"].get("title", "").startswith("Parked deals")
    ]
    (metric,) = widget["properties"]["metrics"]
    assert metric[:4] == [
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        f"<GetAtt:{dlq_id}.QueueName>",
    ]


def test_dashboard_shows_the_repricing_outcomes_and_the_parked_projects(synth: Synth) -> None:
    dlq_id = _logical_id(synth, "AWS::SQS::Queue", QueueName=f"{PREFIX}-margin-dlq")
    graphed = _graphed(_dashboard(synth))
    assert graphed["Projects re-priced by outcome"] >= {
        (PREFIX, "ProjectsRepriced"),
        (PREFIX, "ProjectsParked"),
    }
    (widget,) = [
        w
        for w in _dashboard(synth)["widgets"]
        if w["properties"].get("title", "").startswith("Parked projects")
    ]
    (metric,) = widget["properties"]["metrics"]
    assert metric[3] == f"<GetAtt:{dlq_id}.QueueName>"


def test_dashboard_shows_every_function_and_every_alarm(synth: Synth) -> None:
    body = _dashboard(synth)
    text = json.dumps(body)
    for logical_id in synth.of_type("AWS::Lambda::Function"):
        assert f"<Ref:{logical_id}>" in text, logical_id
    shown = {
        arn
        for widget in body["widgets"]
        if widget["type"] == "alarm"
        for arn in widget["properties"]["alarms"]
    }
    assert shown == {f"<GetAtt:{k}.Arn>" for k in synth.of_type("AWS::CloudWatch::Alarm")}


def test_every_business_metric_on_the_dashboard_is_one_a_handler_emits(synth: Synth) -> None:
    handlers = "\n".join(p.read_text() for p in sorted((ROOT / "functions").glob("*/handler.py")))
    business = {
        name for namespace, name in set().union(*_graphed(_dashboard(synth)).values()) if namespace == PREFIX
    }
    assert business
    for name in business:
        assert f'"{name}"' in handlers, f"no handler emits {name} any more"


@pytest.mark.parametrize(
    "title, consumer",
    [
        ("Time and expense entries by outcome", "posting_consumer"),
        ("Projects re-priced by outcome", "margin_consumer"),
    ],
)
def test_the_outcome_graphs_draw_only_metrics_their_consumer_emits(
    synth: Synth, title: str, consumer: str
) -> None:
    """A metric renamed in the consumer and not on the dashboard would leave its line flat forever."""
    import importlib

    emitted = set(importlib.import_module(f"functions.{consumer}.handler").FATE_METRICS.values())
    graphed = {name for _, name in _graphed(_dashboard(synth))[title]}
    assert graphed and graphed <= emitted, graphed - emitted
