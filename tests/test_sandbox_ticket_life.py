"""The sandbox's ticket after creation, where no recording reaches: GLPI's own rules, and the technician's side.

tests/test_sandbox_contract.py replays what a real GLPI answered (230-235, 400-425). These tests
cover what the sandbox reproduces from GLPI's source beyond those recordings (a requester's answer
reopens a ticket, `pending`, approving or refusing a solution, the time spent waiting, refusals), and
the ways a test plays the technician: the Python methods and the /_sandbox/ endpoints. Each runs
against GLPI 10 and GLPI 11, whose rules are the same; only the text differs.
"""

from __future__ import annotations

import pytest
import requests

from glpi_sandbox import NO_PERMISSION, GlpiSandbox

APP_TOKEN, USER_TOKEN, RESTRICTED_TOKEN = "app", "user", "restricted"
NEW, ASSIGNED, WAITING, SOLVED, CLOSED = 1, 2, 4, 5, 6
TECHNICIAN = 10  # "tecnico", in the demo data


class Clock:
    """A clock the test moves: GLPI counts delays in seconds."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=[10, 11], ids=["glpi10", "glpi11"])
def glpi(request):
    sandbox = GlpiSandbox(app_token=APP_TOKEN, user_tokens={USER_TOKEN: 7, RESTRICTED_TOKEN: 9}, version=request.param)
    sandbox.clock = Clock()
    url = sandbox.start()
    yield sandbox, url
    sandbox.stop()


def login(url: str, user_token: str = USER_TOKEN) -> dict[str, str]:
    answer = requests.get(
        f"{url}/initSession", headers={"App-Token": APP_TOKEN, "Authorization": f"user_token {user_token}"}, timeout=5
    )
    return {"App-Token": APP_TOKEN, "Session-Token": answer.json()["session_token"]}


def post(url: str, headers: dict, path: str, fields) -> requests.Response:
    return requests.post(f"{url}/{path}", headers=headers, json={"input": fields}, timeout=5)


def get(url: str, headers: dict, path: str, **params) -> requests.Response:
    return requests.get(f"{url}/{path}", headers=headers, params=params, timeout=5)


def new_ticket(url: str, headers: dict, requester: int = 8, entity: int = 1) -> int:
    fields = {"name": "Impressora", "content": "<p>não imprime</p>", "entities_id": entity}
    return post(url, headers, "Ticket", {**fields, "_users_id_requester": requester}).json()["id"]


def followup(url: str, headers: dict, ticket_id: int, content: str = "<p>oi</p>", **fields) -> requests.Response:
    return post(
        url, headers, "ITILFollowup", {"itemtype": "Ticket", "items_id": ticket_id, "content": content, **fields}
    )


def test_the_technician_answers_through_the_python_methods(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    sandbox.add_actor(ticket_id)  # the technician assigns himself
    public = sandbox.add_followup(ticket_id, "<p>Reinicie a impressora & teste</p>")
    private = sandbox.add_followup(ticket_id, "nota interna", is_private=True)
    listed = get(url, headers, f"Ticket/{ticket_id}/ITILFollowup").json()
    assert [(row["id"], row["users_id"], row["is_private"], row["timeline_position"]) for row in listed] == [
        (public, TECHNICIAN, 0, 4),
        (private, TECHNICIAN, 1, 4),
    ]
    expected = "<p>Reinicie a impressora & teste</p>"
    assert listed[0]["content"] == (
        expected if sandbox.version == 11 else "&#60;p&#62;Reinicie a impressora &#38; teste&#60;/p&#62;"
    )
    sandbox.add_solution(ticket_id, "trocado o toner")
    ticket = get(url, headers, f"Ticket/{ticket_id}").json()
    assert (ticket["status"], ticket["users_id_lastupdater"]) == (SOLVED, TECHNICIAN)
    sandbox.set_ticket_status(ticket_id, CLOSED)
    assert get(url, headers, f"Ticket/{ticket_id}").json()["status"] == CLOSED
    with pytest.raises(ValueError, match="no ticket 99"):
        sandbox.add_followup(99, "x")
    with pytest.raises(ValueError, match="already an actor"):
        sandbox.add_actor(ticket_id)


def test_the_technician_answers_through_the_control_endpoints(glpi):
    sandbox, url = glpi
    control = url.replace("/apirest.php", "/_sandbox")
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    assigned = requests.post(f"{control}/tickets/{ticket_id}/actors", json={}, timeout=5)
    assert assigned.status_code == 201 and sandbox.ticket_users[-1]["users_id"] == TECHNICIAN
    assert (
        requests.post(f"{control}/tickets/{ticket_id}/followups", json={"content": "a"}, timeout=5).status_code == 201
    )
    note = {"content": "b", "is_private": True, "users_id": 9}
    assert requests.post(f"{control}/tickets/{ticket_id}/followups", json=note, timeout=5).json() == {"id": 2}
    followups = requests.get(f"{control}/tickets/{ticket_id}/followups", timeout=5).json()
    assert [(row["users_id"], row["is_private"]) for row in followups] == [(TECHNICIAN, 0), (9, 1)]
    solved = requests.post(f"{control}/tickets/{ticket_id}/solutions", json={"content": "feito"}, timeout=5)
    assert solved.status_code == 201 and sandbox.tickets[ticket_id]["status"] == SOLVED
    closed = requests.post(f"{control}/tickets/{ticket_id}/status", json={"status": CLOSED}, timeout=5)
    assert closed.status_code == 200 and closed.json()["status"] == CLOSED and closed.json()["closedate"]
    assert requests.post(f"{control}/tickets/99/followups", json={"content": "a"}, timeout=5).status_code == 404
    for part, payload in [("followups", {}), ("status", {"status": "6"}), ("actors", {"type": 5})]:
        refused = requests.post(f"{control}/tickets/{ticket_id}/{part}", json=payload, timeout=5)
        assert refused.status_code == 400 and "error" in refused.json(), part
    unknown_user = requests.post(f"{control}/tickets/{ticket_id}/followups", json={"content": "a", "users_id": 99})
    assert unknown_user.status_code == 400 and "no user 99" in unknown_user.json()["error"]
    assert sandbox.call_count(endpoint="ITILFollowup") == 0  # not API calls


def test_a_followup_by_someone_else_than_the_requester_takes_a_new_ticket_into_account(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    sandbox.clock.now += 90
    assert followup(url, headers, ticket_id).status_code == 201
    ticket = sandbox.tickets[ticket_id]
    assert (ticket["status"], ticket["takeintoaccount_delay_stat"]) == (NEW, 90) and ticket["takeintoaccountdate"]
    assert sandbox.followups[1]["timeline_position"] == 1  # not an actor: left


def test_a_requesters_answer_reopens_a_solved_ticket_and_refuses_the_solution(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers, requester=7)  # the API user is the requester
    assert followup(url, headers, ticket_id).json()["id"] == 1
    assert sandbox.tickets[ticket_id]["takeintoaccount_delay_stat"] == 0  # a requester does not take it into account
    sandbox.add_actor(ticket_id)
    sandbox.add_solution(ticket_id, "feito")
    assert followup(url, headers, ticket_id, "<p>voltou a falhar</p>").status_code == 201
    ticket = sandbox.tickets[ticket_id]
    assert (ticket["status"], ticket["solvedate"], ticket["solve_delay_stat"]) == (ASSIGNED, None, 0)
    solution = get(url, headers, f"Ticket/{ticket_id}/ITILSolution").json()[0]
    assert (solution["status"], solution["users_id_approval"]) == (4, 7) and solution["date_approval"]


def test_a_requester_approves_or_refuses_the_solution(glpi):
    sandbox, url = glpi
    headers = login(url)
    approved, refused = new_ticket(url, headers, requester=7), new_ticket(url, headers, requester=7)
    for ticket_id in (approved, refused):
        sandbox.add_solution(ticket_id, "feito")
    assert followup(url, headers, approved, "", add_close=1).status_code == 201
    assert sandbox.tickets[approved]["status"] == CLOSED and sandbox.solutions[1]["status"] == 3
    assert "Solution approved" in sandbox.followups[1]["content"]
    assert followup(url, headers, refused, "", add_reopen=1).json() == [
        "ERROR_GLPI_ADD",
        "If you want to reopen this item, you must specify a reason",
    ]
    assert followup(url, headers, refused, "ainda não", add_reopen=1).status_code == 201
    assert sandbox.tickets[refused]["status"] == NEW and sandbox.solutions[2]["status"] == 4


def test_pending_counts_the_time_spent_waiting(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    sandbox.add_actor(ticket_id)
    sandbox.clock.now += 60
    assert followup(url, headers, ticket_id, "aguardando o cliente", pending=1).status_code == 201
    assert sandbox.tickets[ticket_id]["status"] == WAITING
    sandbox.clock.now += 600
    assert followup(url, headers, ticket_id, "o cliente voltou", pending=0).status_code == 201
    ticket = sandbox.tickets[ticket_id]
    assert (ticket["status"], ticket["waiting_duration"], ticket["begin_waiting_date"]) == (ASSIGNED, 600, None)
    sandbox.clock.now += 30
    updated = requests.put(f"{url}/Ticket/{ticket_id}", headers=headers, json={"input": {"status": SOLVED}}, timeout=5)
    assert updated.json() == [{str(ticket_id): True, "message": ""}]
    assert sandbox.tickets[ticket_id]["solve_delay_stat"] == 60 + 600 + 30 - 600


def test_put_ticket_reopens_clears_the_dates_and_answers_like_glpi(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    sandbox.add_solution(ticket_id, "feito")
    sandbox.set_ticket_status(ticket_id, CLOSED)
    both = [{"id": ticket_id, "status": NEW, "urgency": 5, "name": "A & B"}, {"id": 999}]
    partial = requests.put(f"{url}/Ticket", headers=headers, json={"input": both}, timeout=5)
    assert partial.status_code == 207 and partial.json() == [
        "ERROR_GLPI_PARTIAL_UPDATE",
        [{str(ticket_id): True, "message": ""}],
    ]
    ticket = sandbox.tickets[ticket_id]
    assert (ticket["status"], ticket["solvedate"], ticket["closedate"], ticket["priority"]) == (NEW, None, None, 4)
    assert ticket["name"] == ("A & B" if sandbox.version == 11 else "A &#38; B")
    assert sandbox.solutions[1]["status"] == 4
    missing = requests.put(f"{url}/Ticket/999", headers=headers, json={"input": {"status": 2}}, timeout=5)
    assert missing.status_code == 400 and missing.json() == ["ERROR_GLPI_UPDATE", None]
    for fields, message in [
        ({"entities_id": 2}, "does not update a ticket's entities_id"),
        ({"_users_id_assign": 9}, "Ticket_User"),
    ]:
        refused = requests.put(f"{url}/Ticket/{ticket_id}", headers=headers, json={"input": fields}, timeout=5)
        assert refused.status_code == 400 and message in refused.json()[1]
    other_entity = new_ticket(url, headers, entity=2)
    restricted = login(url, RESTRICTED_TOKEN)
    forbidden = requests.put(
        f"{url}/Ticket/{other_entity}", headers=restricted, json={"input": {"status": 2}}, timeout=5
    )
    assert forbidden.status_code == 400 and forbidden.json() == ["ERROR_GLPI_UPDATE", NO_PERMISSION]
    no_input = requests.put(f"{url}/Ticket/{ticket_id}", headers=headers, json={}, timeout=5)
    assert no_input.status_code == 400 and no_input.json()[0] == "ERROR_BAD_ARRAY"


def test_glpi_refuses_followups_solutions_and_actors_as_its_source_says(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers)
    assert followup(url, headers, ticket_id, "").json() == [
        "ERROR_GLPI_ADD",
        "You can't add a followup without description",
    ]
    assert post(url, headers, "ITILFollowup", {"itemtype": "Change", "items_id": ticket_id, "content": "x"}).json() == [
        "ERROR_GLPI_ADD",
        NO_PERMISSION,
    ]
    solution = {"itemtype": "Ticket", "items_id": ticket_id, "content": "feito"}
    assert post(url, headers, "ITILSolution", solution).json()["message"] == "Item successfully added: 1"
    assert post(url, headers, "ITILSolution", solution).json() == [
        "ERROR_GLPI_ADD",
        "The item is already solved, did anyone pushed a solution before you?",
    ]
    sandbox.set_ticket_status(ticket_id, CLOSED)
    assert post(url, headers, "ITILSolution", solution).json() == ["ERROR_GLPI_ADD", NO_PERMISSION]
    for actor in (
        {"tickets_id": ticket_id, "users_id": 8, "type": 1},
        {"tickets_id": ticket_id, "users_id": 99, "type": 2},
    ):
        refused = post(url, headers, f"Ticket/{ticket_id}/Ticket_User", actor)  # already requester; no such user
        assert refused.status_code == 400 and refused.json() == ["ERROR_GLPI_ADD", ""]
    observer = post(url, headers, "Ticket_User", {"tickets_id": ticket_id, "users_id": 9, "type": 3})
    assert observer.status_code == 201 and observer.headers["location"].endswith(
        f"/Ticket_User/{observer.json()['id']}"
    )


def test_what_the_restricted_user_sees_of_a_ticket_elsewhere(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = new_ticket(url, headers, entity=2)
    sandbox.add_followup(ticket_id, "x")
    restricted = login(url, RESTRICTED_TOKEN)
    assert get(url, restricted, "ITILFollowup/1").status_code == 403
    assert get(url, restricted, f"Ticket/{ticket_id}/ITILFollowup").status_code == 403
    assert get(url, restricted, "ITILFollowup").json() == []
    assert followup(url, restricted, ticket_id).json() == ["ERROR_GLPI_ADD", NO_PERMISSION]
    assert [row["id"] for row in get(url, headers, "ITILFollowup").json()] == [1]


def test_get_item_options(glpi):
    sandbox, url = glpi
    headers = login(url)
    ticket_id = post(url, headers, "Ticket", {"name": "x", "entities_id": 1, "itilcategories_id": 77}).json()["id"]
    expanded = get(url, headers, f"Ticket/{ticket_id}", expand_dropdowns="true", get_hateoas="false").json()
    assert (expanded["itilcategories_id"], expanded["users_id_recipient"], "links" in expanded) == ("", "api", False)
    user = get(url, headers, "User/7", expand_dropdowns="true").json()
    assert user["entities_id"] == "Root entity" and user["last_login"]
    refused = get(url, headers, f"Ticket/{ticket_id}", with_logs="true")
    assert refused.status_code == 400 and refused.json() == [
        "ERROR",
        "with_logs is not implemented by the GLPI sandbox",
    ]
    assert get(url, headers, f"Ticket/{ticket_id}", with_logs="false").status_code == 200
