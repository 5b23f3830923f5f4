"""The Workday adapter against the Workday sandbox in-process: sign-in with the integration user's refresh
token, the worker-changes report read for a window in the tenant's time zone, leavers, transfers and
effective-dated cost rates as canonical workers, and every worker id paged through the Staffing API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.workday import WorkdayHcm
from hub.errors import ThrottledError
from hub.model.workforce import WorkerType
from local.sandboxes import Faults, WorkdaySandbox

pytestmark = pytest.mark.disable_socket

T0 = dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC)  # 09:00 in the tenant (America/Los_Angeles)
ENTITIES = {"PSHUB_US": "US01", "PSHUB_UK": "UK01"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workday(clock) -> WorkdaySandbox:
    return WorkdaySandbox(clock=clock)


def hcm_for(workday: WorkdaySandbox, **overrides) -> WorkdayHcm:
    options = {
        "base_url": workday.base_url,
        "tenant": workday.tenant,
        "client_id": workday.client_id,
        "client_secret": workday.client_secret,
        "refresh_token": "pshub-isu-refresh-token",
        "report_owner": "ISU_PSHub",
        "legal_entities": ENTITIES,
        "tenant_time_zone": "America/Los_Angeles",  # the sandbox's default tenant zone
        "retry": RetryPolicy(sleep=lambda seconds: None),
        **overrides,
    }
    return WorkdayHcm(httpx.Client(transport=workday.transport()), **options)


def test_a_window_reads_the_workers_changed_in_it_with_their_rate_history_and_leaves_later_ones(
    workday, clock
):
    hcm = hcm_for(workday)
    ana, ben, cy = workday.seed_workers(3, cost_rate="90")
    clock.now = T0 + dt.timedelta(hours=1)
    workday.change_cost_rate(ana, "110", "USD", "2026-11-16")  # effective mid-month
    workday.terminate(ben, "2026-11-30")
    window_end = T0 + dt.timedelta(hours=2)
    clock.now = T0 + dt.timedelta(hours=3)
    workday.set_skills(cy, ["SAP FICO", "Change management"])  # after the window: the next one's

    changes = hcm.changed_workers(changed_since=T0 + dt.timedelta(minutes=30), until=window_end)

    assert sorted(w.hcm_id for w in changes.workers) == sorted([ana, ben]) and changes.unmappable == {}
    first = next(w for w in changes.workers if w.hcm_id == ana)
    assert first.rate_on(dt.date(2026, 11, 13)).hourly.amount == Decimal("90")
    assert first.rate_on(dt.date(2026, 11, 16)).hourly.amount == Decimal("110")
    assert first.rate_on(dt.date(2026, 11, 15)).effective_to == dt.date(2026, 11, 15)
    leaver = next(w for w in changes.workers if w.hcm_id == ben)
    assert leaver.end_date == dt.date(2026, 11, 30) and not leaver.active_on(dt.date(2026, 12, 1))
    assert first.worker_type is WorkerType.EMPLOYEE and first.calendar.hours_per_day == Decimal(8)
    assert first.changed_at is not None and first.changed_at.utcoffset() == dt.timedelta(hours=-8)
    prompts = [c.query.get("Changed_Since") for c in workday.calls("GET", "/ccx/service/customreport2")]
    assert prompts == ["2026-11-02T09:30:00.000-08:00"]  # the tenant's local time, with its offset


def test_a_future_dated_transfer_is_a_placement_from_its_effective_date(workday, clock):
    hcm = hcm_for(workday)
    [mover] = workday.seed_workers(1)
    clock.now = T0 + dt.timedelta(hours=1)
    workday.transfer(
        mover, legal_entity="PSHUB_UK", cost_centre="CC300", effective="2027-01-01", country="GB"
    )

    [worker] = hcm.changed_workers(changed_since=T0, until=T0 + dt.timedelta(hours=2)).workers

    assert worker.placement_on(dt.date(2026, 12, 31)).legal_entity_code == "US01"
    moved = worker.placement_on(dt.date(2027, 1, 1))
    assert (moved.legal_entity_code, moved.cost_centre) == ("UK01", "CC300")


def test_a_worker_of_an_unmapped_company_is_returned_unmappable_naming_the_company(workday, clock):
    hcm = hcm_for(workday, legal_entities={"PSHUB_US": "US01"})
    _, uk = workday.seed_workers(2, legal_entities=("PSHUB_US", "PSHUB_UK"))

    changes = hcm.changed_workers(changed_since=T0 - dt.timedelta(days=1), until=T0 + dt.timedelta(hours=1))

    assert len(changes.workers) == 1 and list(changes.unmappable) == [uk]
    assert "PSHUB_UK" in changes.unmappable[uk].problems[0]["problem"]


def test_every_worker_id_is_paged_through_leavers_included(workday, clock):
    hcm = hcm_for(workday)
    ids = workday.seed_workers(250)
    workday.terminate(ids[0], "2026-10-31")

    listed = list(hcm.worker_ids())

    assert sorted(listed) == sorted(ids)
    pages = workday.calls("GET", "/ccx/api/staffing")
    assert [c.query["offset"] for c in pages] == ["0", "100", "200"]


def test_a_report_throttled_beyond_the_retries_is_a_throttled_error_carrying_workdays_retry_after(clock):
    workday = WorkdaySandbox(clock=clock, faults=Faults(throttle_rate=1.0, seed=3))
    slept: list[float] = []
    hcm = hcm_for(workday, retry=RetryPolicy(max_attempts=3, sleep=slept.append))

    with pytest.raises(ThrottledError) as caught:
        hcm.changed_workers(changed_since=T0, until=T0 + dt.timedelta(hours=1))

    assert caught.value.retry_after == 1 and slept == [1, 1]
    assert len(workday.calls("GET", "/ccx/service/customreport2")) == 3
