"""Routing: legal entity (and optionally geography, service line, migration wave) -> target systems.

The routing table holds, per legal entity, the ERP system that books it (``netsuite-us``, ``netsuite-uk``, a
legacy ERP during migration...), the subsidiary in that ERP and the entity's own facts (country, functional
currency, timezone). Overrides narrow a route by service line. It also keeps the customer cross-reference
(CRM account id <-> ERP customer id per ERP system).

Items:
- ``pk=LE#{code}``, ``sk=ROUTE``: the entity's default route.
- ``pk=LE#{code}``, ``sk=SL#{service line}``: an override for one service line (e.g. moved in an earlier wave).
- ``pk=CUST#{crm account id}``, ``sk=ERP#{system}``: the ERP customer id, once known.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub import aws
from hub.errors import DataValidationError
from hub.model import LegalEntity


class Route(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    legal_entity: LegalEntity
    erp_system: str = Field(min_length=1)
    erp_kind: str = Field(default="netsuite", min_length=1)
    subsidiary_id: str = Field(min_length=1)
    migration_wave: str | None = None
    active: bool = True


class RoutingTable:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else aws.table(table_name)

    def resolve(self, legal_entity_code: str, *, service_line: str | None = None) -> Route:
        """The route for an entity (a service-line override wins); DataValidationError if none is active."""
        item = None
        if service_line:
            item = self._table.get_item(
                Key={"pk": f"LE#{legal_entity_code}", "sk": f"SL#{service_line}"}
            ).get("Item")
        if item is None:
            item = self._table.get_item(Key={"pk": f"LE#{legal_entity_code}", "sk": "ROUTE"}).get("Item")
        if item is None or not item.get("active", True):
            raise DataValidationError(
                f"no active route for legal entity {legal_entity_code}",
                problems=[{"field": "legal_entity_code", "problem": f"{legal_entity_code} is not routed"}],
                code="UNROUTED_LEGAL_ENTITY",
            )
        return Route.model_validate(item)

    def put_route(self, route: Route, *, service_line: str | None = None) -> None:
        sk = f"SL#{service_line}" if service_line else "ROUTE"
        self._table.put_item(
            Item={"pk": f"LE#{route.legal_entity.code}", "sk": sk, **route.model_dump(mode="json")}
        )

    def customer_id(self, crm_account_id: str, erp_system: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"CUST#{crm_account_id}", "sk": f"ERP#{erp_system}"}).get(
            "Item"
        )
        return item["erp_customer_id"] if item else None

    def remember_customer(self, crm_account_id: str, erp_system: str, erp_customer_id: str) -> None:
        self._table.put_item(
            Item={
                "pk": f"CUST#{crm_account_id}",
                "sk": f"ERP#{erp_system}",
                "erp_customer_id": erp_customer_id,
            }
        )
