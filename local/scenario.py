"""The scripted closed-won scenario the demo, the e2e tests and the benchmark share.

Deals are seeded in the Salesforce sandbox, then announced to the hub the way Salesforce would: a
Standard Webhooks-signed JSON change event per deal (the record nested like a SOQL result), or an Outbound
Message carrying several notifications. Duplicates, a tampered delivery and a non-stage change are mixed in.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from local.sandboxes.salesforce import SalesforceSandbox, outbound_message

BILLING_TYPES = ["Fixed Fee - Milestones", "Time and Materials", "Retainer", "Subscription"]
SERVICES = [
    ("DISCOVERY", "Discovery and design", 40000),
    ("BUILD", "Build and deploy", 60000),
    ("TRAIN", "Training", 12000),
    ("RUN", "Managed service", 8000),
]


@dataclass
class Deal:
    index: int
    opportunity_id: str
    name: str
    legal_entity: str | None
    channel: str  # webhook | outbound-message
    correlation_id: str | None = None
    deliveries: int = 0


@dataclass
class Tally:
    """What the hub answered: every delivery is counted once, by outcome."""

    answers: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.answers[outcome] += 1


def seed_deals(
    sf: SalesforceSandbox,
    count: int,
    *,
    seed: int = 7,
    missing_entity: int | None = None,
    outbound: int = 0,
    billing_types: list[str] | None = None,
) -> list[Deal]:
    """``count`` closed-won deals across US01 (USD) and UK01 (GBP); the last ``outbound`` go by Outbound
    Message; deal ``missing_entity`` (1-based) has no legal entity."""
    rng = random.Random(seed)
    accounts = {
        "US01": [
            sf.seed_account(Name=f"US Customer {i}", BillingCountry="US", CurrencyIsoCode="USD")
            for i in range(1, 5)
        ],
        "UK01": [
            sf.seed_account(Name=f"UK Customer {i}", BillingCountry="GB", CurrencyIsoCode="GBP")
            for i in range(1, 5)
        ],
    }
    deals = []
    start = dt.date(2027, 1, 4)
    for index in range(1, count + 1):
        entity = "UK01" if index % 3 == 0 else "US01"
        currency = "GBP" if entity == "UK01" else "USD"
        kinds = billing_types or BILLING_TYPES
        billing = kinds[index % len(kinds)]
        items = rng.sample(SERVICES, k=rng.randint(1, 3))
        line_items = [
            {
                "ProductCode": code,
                "Name": name,
                "Quantity": 1.0,
                "UnitPrice": float(price),
                "ServiceDate": (start + dt.timedelta(days=30 * (n + 1))).isoformat(),
            }
            for n, (code, name, price) in enumerate(items)
        ]
        fields: dict[str, Any] = {
            "Name": f"Deal {index:02d} - {items[0][1]}",
            "StageName": "Closed Won",
            "AccountId": rng.choice(accounts[entity]),
            "CurrencyIsoCode": currency,
            "Billing_Type__c": billing,
            "Start_Date__c": start.isoformat(),
            "End_Date__c": (start + dt.timedelta(days=364)).isoformat(),
            "Legal_Entity__c": None if index == missing_entity else entity,
        }
        opp_id = sf.seed_opportunity(line_items=line_items, **fields)
        channel = "outbound-message" if index > count - outbound else "webhook"
        deals.append(Deal(index, opp_id, fields["Name"], fields["Legal_Entity__c"], channel))
    return deals


def webhook_record(sf: SalesforceSandbox, opportunity_id: str) -> dict[str, Any]:
    """The opportunity as the CRM's change event carries it: the record with Account and line items nested."""
    record = {k: v for k, v in (sf.opportunity(opportunity_id) or {}).items() if v is not None}
    account = sf.account(record["AccountId"]) or {}
    items = sf.line_items(opportunity_id)
    record["Account"] = {k: account.get(k) for k in ("Id", "Name", "BillingCountry", "CurrencyIsoCode")}
    record["OpportunityLineItems"] = {"totalSize": len(items), "done": True, "records": items}
    return record


def change_body(record: dict[str, Any], changed: list[str]) -> bytes:
    return json.dumps(
        {"type": "opportunity.changed", "data": {"changedFields": changed, "record": record}}, default=str
    ).encode()


class Announcer:
    """Sends the deliveries to the hub's webhook URL and tallies the answers."""

    def __init__(self, url: str, sign: Any, sf: SalesforceSandbox, tally: Tally | None = None) -> None:
        self.url = url
        self.sign = sign
        self.sf = sf
        self.tally = tally or Tally()
        self.http = httpx.Client(timeout=30)

    def _post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        answer = self.http.post(self.url, content=body, headers=headers)
        self.tally.add("accepted" if answer.status_code in (200, 202) else f"rejected-{answer.status_code}")
        return answer

    def webhook(self, deal: Deal, *, msg_id: str | None = None) -> httpx.Response:
        body = change_body(webhook_record(self.sf, deal.opportunity_id), ["StageName", "Probability"])
        answer = self._post(body, self.sign(body, msg_id=msg_id))
        deal.deliveries += 1
        if answer.status_code == 202:
            deal.correlation_id = answer.json()["correlationId"]
        return answer

    def concurrently(self, deal: Deal, times: int) -> None:
        threads = [threading.Thread(target=self.webhook, args=(deal,)) for _ in range(times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def outbound(self, deals: list[Deal], org_id: str) -> httpx.Response:
        # The Outbound Message is configured to carry the opportunity fields the hub reads.
        from hub.mapping.salesforce import OPPORTUNITY_FIELDS as fields

        records = [{f: (self.sf.opportunity(d.opportunity_id) or {}).get(f) for f in fields} for d in deals]
        body = outbound_message(org_id, records)
        answer = self._post(body, {"content-type": "text/xml; charset=utf-8", "SOAPAction": '""'})
        for deal in deals:
            deal.deliveries += 1
        return answer

    def tampered(self, deal: Deal) -> httpx.Response:
        body = change_body(webhook_record(self.sf, deal.opportunity_id), ["StageName"])
        headers = self.sign(body)
        return self._post(body.replace(b"Closed Won", b"Closed Lost"), headers)

    def stage_unchanged(self, deal: Deal) -> httpx.Response:
        body = change_body(webhook_record(self.sf, deal.opportunity_id), ["Description"])
        return self._post(body, self.sign(body))
