"""GET /v1/transactions/{correlationId}: one business transaction with every checkpoint (experience API).

For portals and ops: what happened to a deal, step by step, with the reason if it was parked. IAM-authorised.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from hub.ledger import Ledger
from hub.observability import entry
from hub.settings import TransactionsApiSettings, load

app = APIGatewayRestResolver()
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@functools.cache
def default_ledger() -> Ledger:
    return Ledger(load(TransactionsApiSettings).ledger_table)


def _answer(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.get("/v1/transactions/<correlation_id>")
def get_transaction(correlation_id: str) -> Response:
    if not _ID.match(correlation_id):
        return _answer(
            400,
            {
                "error": "malformed correlationId",
                "problems": [{"field": "correlationId", "problem": "must be a lower-case UUID"}],
            },
        )
    transaction = app.context["ledger"].get(correlation_id)
    if transaction is None:
        return _answer(404, {"error": f"no transaction {correlation_id}"})
    return _answer(200, transaction)


@entry(TransactionsApiSettings, correlation_id_path="pathParameters.correlationId")
def handler(event: dict[str, Any], context: Any, ledger: Ledger | None = None) -> dict[str, Any]:
    app.append_context(ledger=ledger or default_ledger())
    return app.resolve(event, context)
