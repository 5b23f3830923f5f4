"""Kantata workspace status and story state -> the canonical project and task status."""

from __future__ import annotations

import pytest

from hub.mapping import kantata_status as ks
from hub.model import ProjectStatus, TaskStatus


def workspace(message: str | None, color: str | None = None, *, archived: bool = False) -> dict:
    return {"id": "1", "archived": archived, "status": {"color": color, "key": None, "message": message}}


@pytest.mark.parametrize(
    ("message", "color", "expected"),
    [
        ("Not Started", "grey", ProjectStatus.ACTIVE),
        ("In Progress", "green", ProjectStatus.ACTIVE),
        ("On Hold", "yellow", ProjectStatus.ON_HOLD),
        ("Completed", "blue", ProjectStatus.COMPLETED),
        ("Cancelled", "red", ProjectStatus.CANCELLED),
        ("Canceled", "red", ProjectStatus.CANCELLED),
        ("  on   HOLD ", None, ProjectStatus.ON_HOLD),  # labels are read case- and space-insensitively
    ],
)
def test_given_a_known_status_label_when_mapped_then_the_label_decides(message, color, expected):
    assert ks.project_status_of(workspace(message, color)) is expected


def test_given_a_label_and_a_color_that_disagree_when_mapped_then_the_label_wins():
    assert ks.project_status_of(workspace("On Hold", "green")) is ProjectStatus.ON_HOLD


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        ("gray", ProjectStatus.ACTIVE),
        ("grey", ProjectStatus.ACTIVE),
        ("light-green", ProjectStatus.ACTIVE),
        ("light_green", ProjectStatus.ACTIVE),
        ("green", ProjectStatus.ACTIVE),
        ("yellow", ProjectStatus.ACTIVE),
        ("red", ProjectStatus.ON_HOLD),
        ("Blue", ProjectStatus.COMPLETED),
    ],
)
def test_given_an_unknown_label_when_mapped_then_its_color_decides(color, expected):
    assert ks.project_status_of(workspace("Awaiting Signature", color)) is expected


@pytest.mark.parametrize(
    "record",
    [
        workspace("Awaiting Signature", "purple"),
        workspace(None, None),
        {"id": "1", "archived": False},
        {"id": "1", "archived": False, "status": "In Progress"},
    ],
)
def test_given_neither_label_nor_color_known_when_mapped_then_the_project_is_on_hold_not_active(record):
    assert ks.project_status_of(record) is ks.UNKNOWN_PROJECT_STATUS is ProjectStatus.ON_HOLD


@pytest.mark.parametrize("message", ["In Progress", "Not Started", "On Hold", "Cancelled"])
def test_given_an_archived_workspace_when_mapped_then_it_is_completed_whatever_its_status(message):
    assert ks.project_status_of(workspace(message, "green", archived=True)) is ProjectStatus.COMPLETED


def test_given_the_label_table_when_read_then_only_in_progress_and_not_started_are_active():
    active = {label for label, status in ks.PROJECT_STATUS_LABELS.items() if status is ProjectStatus.ACTIVE}

    assert active == {"not started", "in progress"}
    assert set(ks.PROJECT_STATUS_LABELS.values()) == set(ProjectStatus)  # every canonical status is reachable


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("not started", TaskStatus.OPEN),
        ("started", TaskStatus.OPEN),
        ("needs info", TaskStatus.OPEN),
        ("Completed", TaskStatus.CLOSED),
        ("new", TaskStatus.OPEN),
        ("reopened", TaskStatus.OPEN),
        ("in progress", TaskStatus.OPEN),
        ("blocked", TaskStatus.OPEN),
        ("fixed", TaskStatus.CLOSED),
        ("resolved", TaskStatus.CLOSED),
        ("duplicate", TaskStatus.CLOSED),
        ("can't repro", TaskStatus.CLOSED),
        ("won't fix", TaskStatus.CLOSED),
        ("some custom state", TaskStatus.OPEN),
        (None, TaskStatus.OPEN),
    ],
)
def test_given_a_story_state_when_mapped_then_only_finished_states_close_the_task(state, expected):
    assert ks.task_status_of({"id": "9", "state": state, "archived": False}) is expected


@pytest.mark.parametrize(
    "story",
    [
        {"id": "9", "state": "started", "archived": True},
        {"id": "9", "state": "started", "archived": False, "deleted_at": "2026-11-30T10:00:00-08:00"},
    ],
)
def test_given_an_archived_or_deleted_story_when_mapped_then_the_task_is_closed(story):
    assert ks.task_status_of(story) is TaskStatus.CLOSED


def test_given_ids_when_asking_for_statuses_then_archived_records_are_included():
    assert ks.workspace_status_params(["1", "2"]) == {"only": "1,2", "include_archived": "true"}
    assert ks.story_status_params(["7"]) == {"only": "7", "archived": "include"}
