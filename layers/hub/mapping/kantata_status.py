"""Kantata OX project (workspace) status and task (story) state -> the canonical ``ProjectStatus`` / ``TaskStatus``.

What Kantata says (Kantata OX knowledge base "Project Status" and API reference "Workspaces" / "Stories"):

- A workspace carries ``archived`` (bool) and ``status`` = ``{"color", "key", "message"}``: ``message`` is the
  status label (``search=status:'<label>'`` matches it whole), ``key`` its numeric status id (what
  ``PUT /workspaces/{id}`` takes as ``status_key``), ``color`` one of six colors that say what kind of status it
  is: gray = not yet started, light green = close to starting, green = in progress, yellow = in progress with a
  pending action, red = in progress with a blocker *or ended*, blue = finished. Which labels an account offers
  depends on its settings. The status ids are listed only in the knowledge base table, which could not be
  checked, so the mapping reads the label, then the color, never the id.
- A story's ``state``: ``not started``, ``started``, ``completed`` for tasks, deliverables and milestones (the
  current task statuses add ``needs info``); issues use ``new``, ``reopened``, ``in progress``, ``blocked``,
  ``fixed``, ``duplicate``, ``can't repro``, ``resolved``, ``won't fix``. A story also carries ``archived``.

The hub only needs to know whether billable time may still go to a project (``ACTIVE``) or task (``OPEN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.model import ProjectStatus, TaskStatus

PROJECT_STATUS_LABELS: dict[str, ProjectStatus] = {
    "not started": ProjectStatus.ACTIVE,  # every project starts here (the hub creates them so): open for time
    "in progress": ProjectStatus.ACTIVE,
    "on hold": ProjectStatus.ON_HOLD,
    "completed": ProjectStatus.COMPLETED,
    "cancelled": ProjectStatus.CANCELLED,
    "canceled": ProjectStatus.CANCELLED,
}
"""Kantata project status labels (``status.message``, case-insensitive) -> canonical status."""

PROJECT_STATUS_COLORS: dict[str, ProjectStatus] = {
    "grey": ProjectStatus.ACTIVE,
    "lightgreen": ProjectStatus.ACTIVE,
    "green": ProjectStatus.ACTIVE,
    "yellow": ProjectStatus.ACTIVE,
    "red": ProjectStatus.ON_HOLD,  # "a blocker or ended": not active, and not known to be over
    "blue": ProjectStatus.COMPLETED,
}
"""A label the table above does not know, by its color (``gray``/``grey``, ``light-green``... normalised)."""

UNKNOWN_PROJECT_STATUS = ProjectStatus.ON_HOLD
"""Neither label nor color known: not active (billable time waits for a person), nothing final assumed."""

TASK_STATES: dict[str, TaskStatus] = {
    "not started": TaskStatus.OPEN,
    "started": TaskStatus.OPEN,
    "needs info": TaskStatus.OPEN,
    "completed": TaskStatus.CLOSED,
    # issues
    "new": TaskStatus.OPEN,
    "reopened": TaskStatus.OPEN,
    "in progress": TaskStatus.OPEN,
    "blocked": TaskStatus.OPEN,
    "fixed": TaskStatus.CLOSED,
    "resolved": TaskStatus.CLOSED,
    "duplicate": TaskStatus.CLOSED,
    "can't repro": TaskStatus.CLOSED,
    "won't fix": TaskStatus.CLOSED,
}
"""Kantata story ``state`` (case-insensitive) -> canonical status; an unknown state is open."""


def _label(value: Any) -> str:
    return " ".join(str(value).split()).casefold() if isinstance(value, str) else ""


def _color(value: Any) -> str:
    text = "".join(ch for ch in str(value).casefold() if ch.isalpha()) if isinstance(value, str) else ""
    return text.replace("gray", "grey")


def project_status_of(workspace: Mapping[str, Any]) -> ProjectStatus:
    """A workspace's canonical status: archived is completed; else its status label, else its color."""
    if workspace.get("archived") is True:
        return ProjectStatus.COMPLETED
    status = workspace.get("status")
    if not isinstance(status, Mapping):
        return UNKNOWN_PROJECT_STATUS
    by_label = PROJECT_STATUS_LABELS.get(_label(status.get("message")))
    if by_label is not None:
        return by_label
    return PROJECT_STATUS_COLORS.get(_color(status.get("color")), UNKNOWN_PROJECT_STATUS)


def task_status_of(story: Mapping[str, Any]) -> TaskStatus:
    """A story's canonical status: archived or deleted is closed; else by its ``state``."""
    if story.get("archived") is True or story.get("deleted_at") not in (None, ""):
        return TaskStatus.CLOSED
    return TASK_STATES.get(_label(story.get("state")), TaskStatus.OPEN)


def workspace_status_params(ids: list[str]) -> dict[str, Any]:
    """Workspaces by id, archived ones included (Kantata leaves them out by default)."""
    return {"only": ",".join(ids), "include_archived": "true"}


def story_status_params(ids: list[str]) -> dict[str, Any]:
    """Stories by id, archived ones included."""
    return {"only": ",".join(ids), "archived": "include"}
