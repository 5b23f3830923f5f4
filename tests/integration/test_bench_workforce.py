"""The worker sync benchmark (``local/bench_workforce.py``) at a tiny size, so that it cannot rot: every worker
the HCM changed reaches the PSA through the real handlers, and the figures the bench prints are counted.
Nothing here is timed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from local.bench_workforce import run


@pytest.fixture(scope="module")
def figures():
    return run(workers=40, delta=20)


def test_the_full_sync_applies_every_hcm_worker_to_the_psa_and_counts_the_calls(figures):
    full = figures.phases[0]

    assert full.label == "full sync" and full.read == full.changed == 40
    assert full.enqueued == 40 and full.unmappable == 0
    assert sum(full.fates.values()) == 40 and set(full.fates) <= {"applied", "unchanged"}
    assert full.fates["applied"] >= 36  # the few hired next month are left out of the PSA until then
    assert full.dlq == 0 and full.left_on_queue == 0
    assert full.hcm_calls >= 2  # the token and the change report
    assert full.psa_by_call["POST account_invitations"] >= 1
    assert full.psa_calls == sum(full.psa_by_call.values()) and full.psa_calls_per_worker > 0
    assert full.writes and all(key.split(":")[0] in ("ledger", "planning") for key in full.writes)


def test_the_delta_reads_only_the_changed_workers_and_applies_them_to_the_members(figures):
    full, delta = figures.phases

    assert figures.invitations_accepted == full.fates["applied"]
    assert delta.label == "delta" and delta.read == delta.changed == 20
    assert delta.enqueued == 20 + delta.due and delta.dlq == 0 and delta.left_on_queue == 0
    assert delta.fates["applied"] >= 15
    assert delta.psa_by_call["PUT account_memberships/disable"] >= 1  # the leavers
    assert figures.members == figures.invitations_accepted + 3  # the new hires, invited


def test_the_bench_prints_both_phases_against_the_psa_rate_limit():
    from local.bench import workforce_sync

    out = io.StringIO()
    workforce_sync(Console(file=out, width=300), workers=10, delta=5)

    text = out.getvalue()
    assert "full sync" in text and "delta" in text and "of 10/s" in text
