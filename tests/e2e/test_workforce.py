"""The workforce step through the deployed local stack (``local.workforce``, run once for the module): workers
from the Workday sandbox into Kantata's resource pool by the scheduled sync and the worker consumer, projects the
hub initiated staffed and announced by the signed assignments webhook, then a mid-month rate rise, a leaver and
a transfer re-pricing the projects, with the delivery managers alerted."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from hub.flows.initiation.planning import plan_project
from hub.ledger import Ledger
from hub.planning import PlanningStore
from local import workforce
from local.workforce import WorkforceResult
from tests.support.builders import money, opportunity

pytestmark = pytest.mark.e2e

WORKERS = 40


def _initiated(stack, n: int) -> str:
    """A project as project initiation leaves it: the Kantata workspace with its task, and its profile."""
    deal = opportunity(
        crm_id=f"0065g00000WfPrj{n:03d}",
        name=f"Workforce project {n}",
        amount=money(60_000 + 10_000 * n),
        line_items=(),
    )
    project = plan_project(deal)
    kantata = stack.sandboxes.kantata
    workspace = kantata.seed_workspace(title=project.name, currency="USD")
    kantata.seed_story(workspace, title="Build")
    table = stack.session.resource("dynamodb", endpoint_url=stack.endpoint).Table(
        stack.outputs["PlanningTableName"]
    )
    PlanningStore(stack.outputs["PlanningTableName"], table).put_project(project, workspace)
    return workspace


@pytest.fixture(scope="module")
def staffing(stack) -> WorkforceResult:
    for n in range(workforce.PROJECTS):
        _initiated(stack, n)
    return workforce.run_workforce(stack, workers=WORKERS)


def test_every_hcm_worker_reaches_the_pool_the_leaver_is_disabled_and_the_transfer_moves_entity(staffing):
    assert staffing.problems == []
    assert staffing.hired == WORKERS and staffing.members == WORKERS
    assert staffing.disabled == 1 and staffing.active == WORKERS - 1
    assert staffing.transferred_entity == "UK01"


def test_each_staffed_project_has_a_margin_and_the_rate_rise_takes_one_below_its_floor(staffing):
    assert len(staffing.staffed) == workforce.PROJECTS
    for project in staffing.staffed:
        first = staffing.margins[project.psa_project_id][0]
        assert first["cause"]["kind"] == "assignment" and Decimal(first["margin_pct"]) >= Decimal("0.25")
    risen = staffing.margins[staffing.staffed[0].psa_project_id]
    assert [m["version"] for m in risen] == [1, 2]
    assert risen[1]["cause"]["kind"] == "worker" and "cost rate of worker" in risen[1]["cause"]["detail"]
    assert Decimal(risen[1]["margin_pct"]) < Decimal("0.25") <= Decimal(risen[0]["margin_pct"])
    [alert] = staffing.alerts
    assert staffing.staffed[0].name in alert["subject"]
    assert (
        "below its floor of 25.0%" in alert["message"] and "What changed: the cost rate" in alert["message"]
    )


def test_the_leavers_hours_after_the_last_day_are_left_unpriced_not_priced_at_zero(staffing):
    left = staffing.margins[staffing.staffed[1].psa_project_id][-1]
    assert left["cause"]["kind"] == "worker" and "leaves after" in left["cause"]["detail"]
    assert left["unpriced"] and all("after the last day worked" in u["reason"] for u in left["unpriced"])


def test_each_margin_version_is_announced_exported_and_recorded(stack, staffing):
    s3 = stack.client("s3")
    listing = s3.list_objects_v2(Bucket=stack.outputs["AnalyticsBucketName"], Prefix="margins/")
    records = [
        json.loads(line)
        for item in listing.get("Contents", [])
        for line in s3.get_object(Bucket=stack.outputs["AnalyticsBucketName"], Key=item["Key"])["Body"]
        .read()
        .decode()
        .splitlines()
    ]
    versions = sum(len(v) for v in staffing.margins.values())
    assert len(records) == versions
    table = stack.session.resource("dynamodb", endpoint_url=stack.endpoint).Table(
        stack.outputs["LedgerTableName"]
    )
    ledger = Ledger(stack.outputs["LedgerTableName"], table)
    for project in staffing.staffed:
        header = ledger.header(f"margin:{project.psa_project_id}")
        assert header["status"] == "COMPLETED"
        assert header["refs"]["marginVersion"] == len(staffing.margins[project.psa_project_id])
