"""The Kantata adapter's reads by id (``only=``) when Kantata answers more than was asked: records not asked
for are dropped, and an answer that says it has more pages is read to its end."""

from __future__ import annotations

import httpx

from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.model import ProjectStatus, TaskStatus


def adapter(handler) -> KantataPsa:
    return KantataPsa(
        httpx.Client(transport=httpx.MockTransport(handler)),
        token="t",
        retry=RetryPolicy(sleep=lambda seconds: None),
    )


def answer(collection: str, rows: list[dict], *, page_count: int = 1, page: int = 1) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "count": len(rows),
            "results": [{"key": collection, "id": r["id"]} for r in rows],
            collection: {r["id"]: r for r in rows},
            "meta": {"count": len(rows), "page_count": page_count, "page_number": page, "page_size": 200},
        },
    )


def workspace(workspace_id: str, message: str) -> dict:
    return {
        "id": workspace_id,
        "archived": False,
        "status": {"color": "grey", "key": "300", "message": message},
    }


def test_given_kantata_ignores_only_when_reading_statuses_then_records_not_asked_for_are_dropped():
    seen: list[httpx.Request] = []

    def lists_everything(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer("workspaces", [workspace("1", "On Hold"), workspace("2", "Completed")])

    statuses = adapter(lists_everything).project_statuses(["1", "3"])

    assert statuses == {"1": ProjectStatus.ON_HOLD}
    [request] = seen
    assert request.url.params["only"] == "1,3" and request.url.params["include_archived"] == "true"
    assert request.url.params["per_page"] == "200"


def test_given_an_answer_with_more_pages_when_reading_by_id_then_every_page_is_read():
    def two_pages(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        story = {"id": str(page), "state": "completed" if page == 2 else "started", "archived": False}
        return answer("stories", [story], page_count=2, page=page)

    assert adapter(two_pages).task_statuses(["1", "2"]) == {"1": TaskStatus.OPEN, "2": TaskStatus.CLOSED}
