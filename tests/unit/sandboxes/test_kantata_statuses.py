"""Kantata OX sandbox: workspace status and story state, read by id with `only=`, changed through the admin
surface (Python calls, or `seed()` which the loopback server's `POST /__sandbox/seed` calls)."""

import pytest

from local.sandboxes.kantata import KantataSandbox

pytestmark = pytest.mark.disable_socket


def _by_id(psa_api, collection: str, **params) -> dict:
    response = psa_api.get(f"{collection}.json", params=params)
    assert response.status_code == 200, response.text
    return response.json()[collection]


def test_workspaces_read_by_id_carry_their_status_and_archived_ones_only_when_asked(kantata, psa_api):
    first, second, archived = (kantata.seed_workspace(title=f"P{n}") for n in range(3))
    kantata.archive_workspace(archived)

    plain = _by_id(psa_api, "workspaces", only=f"{first},{archived}")
    everything = _by_id(psa_api, "workspaces", only=f"{first},{second},{archived}", include_archived="true")

    assert set(plain) == {first}
    assert set(everything) == {first, second, archived} and everything[archived]["archived"] is True
    assert everything[first]["status"] == {"color": "grey", "key": "300", "message": "Not Started"}


def test_setting_a_workspace_status_changes_what_the_api_answers(kantata, psa_api):
    workspace = kantata.seed_workspace(title="Acme")

    kantata.set_workspace_status(workspace, "On Hold")
    on_hold = _by_id(psa_api, "workspaces", only=workspace)[workspace]["status"]
    kantata.set_workspace_status(workspace, "Awaiting Signature", color="yellow", key="410")
    custom = _by_id(psa_api, "workspaces", only=workspace)[workspace]["status"]

    assert on_hold["message"] == "On Hold" and on_hold["color"] == "yellow"
    assert custom == {"color": "yellow", "key": "410", "message": "Awaiting Signature"}
    with pytest.raises(ValueError, match="give its color"):
        kantata.set_workspace_status(workspace, "Awaiting Signature")
    with pytest.raises(ValueError, match="no workspace"):
        kantata.set_workspace_status("1", "On Hold")


def test_stories_read_by_id_carry_their_state_and_archived_ones_only_when_asked(kantata, psa_api):
    workspace = kantata.seed_workspace(title="Acme")
    open_task, done_task, archived = (kantata.seed_story(workspace, title=f"T{n}") for n in range(3))
    kantata.set_story_state(done_task, "completed")
    kantata.archive_story(archived)
    ids = f"{open_task},{done_task},{archived}"

    plain = _by_id(psa_api, "stories", only=ids)
    everything = _by_id(psa_api, "stories", only=ids, archived="include")
    only_archived = _by_id(psa_api, "stories", archived="only")

    assert set(plain) == {open_task, done_task} and set(everything) == {open_task, done_task, archived}
    assert set(only_archived) == {archived}
    assert (everything[open_task]["state"], everything[done_task]["state"]) == ("not started", "completed")


def test_a_story_state_must_be_one_its_story_type_has(kantata):
    workspace = kantata.seed_workspace(title="Acme")
    task = kantata.seed_story(workspace, title="Build")
    issue = kantata.seed_story(workspace, title="Bug", story_type="issue")

    kantata.set_story_state(issue, "won't fix")

    with pytest.raises(ValueError, match="state must be one of"):
        kantata.set_story_state(task, "won't fix")
    with pytest.raises(ValueError, match="state must be one of"):
        kantata.set_story_state(issue, "completed")
    assert [s["state"] for s in kantata.stories(workspace) if s["id"] == issue] == ["won't fix"]


def test_the_seed_payload_changes_a_project_and_a_task_mid_run():
    kantata = KantataSandbox()
    created = kantata.seed({"workspaces": [{"title": "Acme", "stories": [{"title": "Build"}]}]})
    [workspace], [story] = created["workspaces"], created["stories"]

    changed = kantata.seed(
        {
            "workspace_statuses": [{"workspace_id": workspace, "message": "Completed", "archived": True}],
            "story_states": [{"story_id": story, "state": "completed"}],
        }
    )

    assert changed["workspace_statuses"] == [workspace] and changed["story_states"] == [story]
    record = kantata.workspace(workspace)
    assert record["archived"] is True and record["status"]["message"] == "Completed"
    assert [s["state"] for s in kantata.stories(workspace)] == ["completed"]
