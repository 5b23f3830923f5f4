"""Webhook to project through the deployed local stack, against the sandboxes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from hub.flows.initiation.intake import business_key, correlation_id_for
from local.ops import redrive
from local.sandboxes.base import Faults
from local.scenario import Announcer, change_body, seed_deals, webhook_record
from local.stack import ORG_ID

pytestmark = pytest.mark.e2e


def _workspaces_for(stack, opportunity_id: str) -> list[dict]:
    return [w for w in stack.sandboxes.kantata.workspaces() if opportunity_id in (w.get("description") or "")]


def _records(stack, kind: str, external_id: str) -> list[dict]:
    return [
        r
        for ns in stack.sandboxes.netsuite.values()
        for r in ns.records(kind)
        if r.get("externalId") == external_id
    ]


def test_same_deal_delivered_three_times_also_concurrently_makes_one_customer_project_and_schedule(stack):
    sf = stack.sandboxes.salesforce
    deal = seed_deals(sf, 1, seed=101, billing_types=["Fixed Fee - Milestones"])[0]
    announcer = Announcer(stack.webhook_url, stack.sign, sf)
    body = change_body(webhook_record(sf, deal.opportunity_id), ["StageName"])
    headers = stack.sign(body)
    answers = [httpx.post(stack.webhook_url, content=body, headers=headers, timeout=30)]  # then a replay
    answers.append(httpx.post(stack.webhook_url, content=body, headers=headers, timeout=30))
    threads = [threading.Thread(target=announcer.webhook, args=(deal,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a.status_code for a in answers} == {202}
    cid = answers[0].json()["correlationId"]
    assert {a.json()["correlationId"] for a in answers} == {cid} and deal.correlation_id == cid
    tx = stack.wait_for([cid], timeout=120)[cid]
    assert tx["status"] == "COMPLETED", tx.get("reason")
    assert len(tx["deliveries"]) == 4  # the replay carried the same webhook-id: one delivery record
    account_id = sf.opportunity(deal.opportunity_id)["AccountId"]
    assert len(_records(stack, "customer", f"sf-{account_id}")) == 1
    assert len(_records(stack, "job", f"sf-opp-{deal.opportunity_id}")) == 1
    workspaces = _workspaces_for(stack, deal.opportunity_id)
    assert len(workspaces) == 1
    milestones = stack.sandboxes.kantata.billing_milestones(workspaces[0]["id"])
    titles = [m["title"] for m in milestones]
    assert len(titles) == len(sf.line_items(deal.opportunity_id)) and len(titles) == len(set(titles))
    written = sf.opportunity(deal.opportunity_id)
    assert written["Integration_Status__c"] == "Project Active"
    assert written["PSA_Project_Id__c"] == str(workspaces[0]["id"])


def test_injected_throttling_and_5xx_at_erp_and_psa_still_complete_every_valid_deal(stack):
    for ns in stack.sandboxes.netsuite.values():
        ns.set_faults(Faults(throttle_rate=0.1, error_rate=0.1, seed=21))
    stack.sandboxes.kantata.set_faults(Faults(throttle_rate=0.1, error_rate=0.1, seed=22))
    sf = stack.sandboxes.salesforce
    deals = seed_deals(sf, 10, seed=202, missing_entity=4, outbound=3)
    announcer = Announcer(stack.webhook_url, stack.sign, sf)
    for deal in deals:
        if deal.channel == "webhook":
            announcer.webhook(deal)
    announcer.outbound([d for d in deals if d.channel == "outbound-message"], ORG_ID)
    announcer.tampered(deals[0])
    body = b'{"type": "opportunity.changed"}'
    announcer._post(body, stack.sign(body))  # malformed: 400
    ids = [correlation_id_for(business_key(d.opportunity_id)) for d in deals]
    settled = stack.wait_for(ids, timeout=240)
    statuses = {d.index: settled.get(cid, {}).get("status") for d, cid in zip(deals, ids, strict=True)}
    assert statuses.pop(4) == "PARKED"
    assert set(statuses.values()) == {"COMPLETED"}, {
        k: settled.get(c, {}).get("reason") for k, c in zip(statuses, ids, strict=False)
    }
    answers = announcer.tally.answers
    sent = sum(answers.values())
    completed = sum(1 for t in settled.values() if t["status"] == "COMPLETED")
    parked = sum(1 for t in settled.values() if t["status"] == "PARKED")
    rejected = sum(n for k, n in answers.items() if k.startswith("rejected"))
    # Every deal is accounted for, and every delivery too: each accepted one carried settled deals (the three
    # Outbound Message deals share one delivery), the others were rejected at the door.
    outbound = [d for d in deals if d.channel == "outbound-message"]
    assert completed + parked == len(deals)
    assert answers["accepted"] == len(deals) - len(outbound) + 1
    assert sent == answers["accepted"] + rejected
    assert answers["rejected-401"] == 1 and answers["rejected-400"] == 1
    injected = sum(
        ns.call_count(status=429) + ns.call_count(status=500) + ns.call_count(status=503)
        for ns in stack.sandboxes.netsuite.values()
    )
    assert injected > 0  # the faults really happened
    for ns in stack.sandboxes.netsuite.values():
        assert ns.peak_in_flight <= 5


def test_parked_deal_fixed_in_the_crm_and_redriven_from_the_dead_letter_queue_completes(stack):
    sf = stack.sandboxes.salesforce
    deal = seed_deals(sf, 1, seed=303, missing_entity=1)[0]
    Announcer(stack.webhook_url, stack.sign, sf).webhook(deal)
    tx = stack.wait_for([deal.correlation_id], timeout=60)[deal.correlation_id]
    assert tx["status"] == "PARKED" and "legal_entity_code" in tx["reason"]
    assert sf.opportunity(deal.opportunity_id)["Integration_Status__c"] == "Integration Error"
    # sales ops fix the deal in the CRM; finance ops redrive the parked transaction
    sf.edit("Opportunity", deal.opportunity_id, Legal_Entity__c="UK01")
    moved = redrive(
        stack.client("sqs"),
        stack.outputs["IntakeDlqUrl"],
        stack.outputs["IntakeQueueUrl"],
        correlation_id=deal.correlation_id,
    )
    assert moved == [deal.correlation_id]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        tx = stack.transaction(deal.correlation_id)
        if tx["status"] == "COMPLETED":
            break
        time.sleep(0.2)
    assert tx["status"] == "COMPLETED" and tx["attempt"] == 2, tx.get("reason")
    assert tx["refs"]["erpSystem"] == "netsuite-uk"


def test_transaction_api_needs_a_signed_caller_and_returns_every_checkpoint(stack):
    sf = stack.sandboxes.salesforce
    deal = seed_deals(sf, 1, seed=404)[0]
    Announcer(stack.webhook_url, stack.sign, sf).webhook(deal)
    stack.wait_for([deal.correlation_id], timeout=60)
    url = f"{stack.api_url}/v1/transactions/{deal.correlation_id}"
    assert httpx.get(url).status_code == 403
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("local", "local"), "execute-api", "us-east-1").add_auth(request)
    answer = httpx.get(url, headers=dict(request.headers))
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "COMPLETED"
    steps = [c["step"] for c in body["checkpoints"] if c["outcome"] == "ok"]
    assert steps[0] == "start" and steps[-1] == "publish_activated"
    assert json.dumps(body).count("Northwind") == 0  # no customer payloads beyond ids in the ledger view
