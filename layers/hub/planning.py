"""The planning table: what the hub knows to price a project's staffing, and the margin models it computed.

Kantata keeps one cost rate per user (not effective-dated) and no billing schedule the hub can price, so the
hub keeps its own copy of what margin needs, each written by the flow that owns it:

- ``pk=WORKER#{hcm id}``, ``sk=PROFILE``: the canonical worker as last applied to the PSA (every
  effective-dated cost rate and placement), ``version`` = the HCM change it came from; written by the worker
  consumer, never regressed by an older change.
- ``pk=WORKER#{hcm id}``, ``sk=ON#{psa project id}``: the projects a worker is planned on (written when a
  margin is computed), so a cost-rate change re-prices exactly those projects.
- ``pk=PROJECT#{psa project id}``, ``sk=PROFILE``: the canonical project as the hub initiated it (customer,
  legal entity, currency, contract value, billing schedule) and its margin floor, if it has its own.
- ``pk=PROJECT#{psa project id}``, ``sk=MARGIN#LATEST``: the latest margin model, its ``version`` (1, 2, ...)
  and whether its events went out (``announced``); ``sk=MARGIN#{version:08d}``: every version, kept.
- ``pk=FX#{base}#{quote}``, ``sk={effective from}``: FX rates (one unit of base is ``rate`` units of quote).
- ``pk=LE#{code}``, ``sk=MARGIN_FLOOR``: the default margin floor of a legal entity's projects.
- ``pk=EFFECTIVE#{day}``, ``sk=WORKER#{hcm id}``: a worker whose cost rate or placement changes on that day,
  to be applied to the PSA then (the PSA cannot hold a future rate).

Decimals are stored as strings (no float ever touches money); models as their JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub import aws
from hub.model import Project
from hub.model.workforce import FxRate, Worker

PROFILE = "PROFILE"
LATEST = "MARGIN#LATEST"


def _worker_pk(hcm_id: str) -> str:
    return f"WORKER#{hcm_id}"


def _project_pk(psa_project_id: str) -> str:
    return f"PROJECT#{psa_project_id}"


@dataclass(frozen=True)
class ProjectProfile:
    project: Project
    psa_project_id: str
    floor: Decimal | None = None  # the project's own floor; None: its legal entity's


@dataclass(frozen=True)
class StoredMargin:
    version: int
    model: dict[str, Any]  # MarginModel JSON (hub.flows.workforce.margin.MarginModel)
    announced: bool
    floor: Decimal | None
    cause: dict[str, Any]
    computed_at: str


class PlanningStore:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else aws.table(table_name)
        # boto3 stays out of the import (the functions' cold start): the table's own client has the class.
        self._conditional_failed = self._table.meta.client.exceptions.ConditionalCheckFailedException

    # ------------------------------------------------------------------------------------------ workers

    def put_worker(self, worker: Worker, version: int) -> bool:
        """Keep the worker as applied at ``version``; False (nothing written) when a later one is kept."""
        try:
            self._table.put_item(
                Item={
                    "pk": _worker_pk(worker.hcm_id),
                    "sk": PROFILE,
                    "version": version,
                    "worker": worker.model_dump_json(),
                },
                ConditionExpression="attribute_not_exists(version) OR version <= :v",
                ExpressionAttributeValues={":v": version},
            )
        except self._conditional_failed:
            return False
        return True

    def workers(self, hcm_ids: Iterable[str]) -> dict[str, Worker]:
        keys = [{"pk": _worker_pk(i), "sk": PROFILE} for i in sorted(set(hcm_ids))]
        return {
            w.hcm_id: w
            for w in (Worker.model_validate_json(str(item["worker"])) for item in self._batch_get(keys))
        }

    def projects_of(self, hcm_id: str) -> list[str]:
        """The PSA projects the worker was planned on when their margins were last computed."""
        return [
            str(item["sk"]).removeprefix("ON#")
            for item in self._query(
                "pk = :pk AND begins_with(sk, :from)",
                {":pk": _worker_pk(hcm_id), ":from": "ON#"},
                projection="sk",
            )
        ]

    def plan_on(self, psa_project_id: str, hcm_ids: Iterable[str]) -> None:
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for hcm_id in sorted(set(hcm_ids)):
                batch.put_item(Item={"pk": _worker_pk(hcm_id), "sk": f"ON#{psa_project_id}"})

    def due_on(self, day: dt.date, hcm_ids: Iterable[str]) -> None:
        """Remember that these workers' PSA records must change on ``day`` (a future-dated rate or transfer)."""
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for hcm_id in sorted(set(hcm_ids)):
                batch.put_item(Item={"pk": f"EFFECTIVE#{day.isoformat()}", "sk": _worker_pk(hcm_id)})

    def due(self, day: dt.date) -> list[str]:
        """The workers with a change effective on ``day``."""
        return [
            str(item["sk"]).removeprefix("WORKER#")
            for item in self._query("pk = :pk", {":pk": f"EFFECTIVE#{day.isoformat()}"}, projection="sk")
        ]

    # ----------------------------------------------------------------------------------------- projects

    def put_project(self, project: Project, psa_project_id: str, *, floor: Decimal | None = None) -> None:
        item: dict[str, Any] = {
            "pk": _project_pk(psa_project_id),
            "sk": PROFILE,
            "project": project.model_dump_json(),
        }
        if floor is not None:
            item["floor"] = str(floor)
        self._table.put_item(Item=item)

    def project(self, psa_project_id: str) -> ProjectProfile | None:
        item = self._table.get_item(Key={"pk": _project_pk(psa_project_id), "sk": PROFILE}).get("Item")
        if not item:
            return None
        return ProjectProfile(
            project=Project.model_validate_json(str(item["project"])),
            psa_project_id=psa_project_id,
            floor=Decimal(str(item["floor"])) if item.get("floor") is not None else None,
        )

    def entity_floor(self, legal_entity_code: str) -> Decimal | None:
        item = self._table.get_item(Key={"pk": f"LE#{legal_entity_code}", "sk": "MARGIN_FLOOR"}).get("Item")
        return Decimal(str(item["floor"])) if item else None

    def put_entity_floor(self, legal_entity_code: str, floor: Decimal) -> None:
        self._table.put_item(
            Item={"pk": f"LE#{legal_entity_code}", "sk": "MARGIN_FLOOR", "floor": str(floor)}
        )

    # ---------------------------------------------------------------------------------------- FX rates

    def put_fx(self, rates: Iterable[FxRate]) -> None:
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for r in rates:
                batch.put_item(
                    Item={
                        "pk": f"FX#{r.base}#{r.quote}",
                        "sk": r.effective_from.isoformat(),
                        "rate": str(r.rate),
                    }
                )

    def fx_rates(self, pairs: Iterable[tuple[str, str]]) -> list[FxRate]:
        """Every rate of the pairs and of their inverses (the FX table converts with either)."""
        wanted = {p for base, quote in pairs if base != quote for p in ((base, quote), (quote, base))}
        rates: list[FxRate] = []
        for base, quote in sorted(wanted):
            for item in self._query("pk = :pk", {":pk": f"FX#{base}#{quote}"}):
                rates.append(
                    FxRate(
                        base=base,
                        quote=quote,
                        rate=Decimal(str(item["rate"])),
                        effective_from=dt.date.fromisoformat(str(item["sk"])),
                    )
                )
        return rates

    # ----------------------------------------------------------------------------------------- margins

    def latest_margin(self, psa_project_id: str) -> StoredMargin | None:
        item = self._table.get_item(
            Key={"pk": _project_pk(psa_project_id), "sk": LATEST}, ConsistentRead=True
        ).get("Item")
        return _stored(item) if item else None

    def margin(self, psa_project_id: str, version: int) -> StoredMargin | None:
        item = self._table.get_item(
            Key={"pk": _project_pk(psa_project_id), "sk": f"MARGIN#{version:08d}"}
        ).get("Item")
        return _stored(item) if item else None

    def margin_versions(self, psa_project_id: str) -> list[StoredMargin]:
        """Every stored version, oldest first."""
        return [
            _stored(item)
            for item in self._query(
                "pk = :pk AND sk BETWEEN :from AND :to",
                {":pk": _project_pk(psa_project_id), ":from": "MARGIN#0", ":to": "MARGIN#9"},
            )
        ]

    def save_margin(
        self,
        psa_project_id: str,
        *,
        version: int,
        model: Mapping[str, Any],
        floor: Decimal | None,
        cause: Mapping[str, Any],
        computed_at: dt.datetime,
    ) -> StoredMargin | None:
        """Store ``version`` as the latest (and in the history) if the latest is still ``version - 1``, and
        answer it as stored; None when another computation stored that version first (compute again)."""
        body = {
            "version": version,
            "model": json.dumps(model, sort_keys=True, default=str),
            "announced": False,
            "cause": json.dumps(cause, sort_keys=True, default=str),
            "computed_at": computed_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            **({"floor": str(floor)} if floor is not None else {}),
        }
        pk = _project_pk(psa_project_id)
        try:
            self._table.put_item(
                Item={"pk": pk, "sk": LATEST, **body},
                ConditionExpression="attribute_not_exists(version)"
                if version == 1
                else "version = :previous",
                **({} if version == 1 else {"ExpressionAttributeValues": {":previous": version - 1}}),
            )
        except self._conditional_failed:
            return None
        self._table.put_item(Item={"pk": pk, "sk": f"MARGIN#{version:08d}", **body})
        return _stored(body)

    def announced(self, psa_project_id: str, version: int) -> None:
        """The version's events went out (a later version may be latest by now: then nothing changes)."""
        pk = _project_pk(psa_project_id)
        for sk in (f"MARGIN#{version:08d}", LATEST):
            with contextlib.suppress(self._conditional_failed):  # a later version is the latest by now
                self._table.update_item(
                    Key={"pk": pk, "sk": sk},
                    UpdateExpression="SET announced = :yes",
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":yes": True, ":v": version},
                )

    # -------------------------------------------------------------------------------------------- reads

    def _batch_get(self, keys: Sequence[Mapping[str, str]]) -> Iterator[dict[str, Any]]:
        return aws.batch_get(self._table, keys, what="the planning table")

    def _query(
        self, condition: str, values: Mapping[str, str], *, projection: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": dict(values),
        }
        if projection:
            params["ProjectionExpression"] = projection
        while True:
            page = self._table.query(**params)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _stored(item: Mapping[str, Any]) -> StoredMargin:
    return StoredMargin(
        version=int(item["version"]),
        model=json.loads(str(item["model"])),
        announced=bool(item.get("announced")),
        floor=Decimal(str(item["floor"])) if item.get("floor") is not None else None,
        cause=json.loads(str(item.get("cause") or "{}")),
        computed_at=str(item.get("computed_at", "")),
    )
