"""TicketGateway: GLPI-side checks, CNPJ -> entity, caches and ticket input, over a fake client."""

from __future__ import annotations

import html
import threading
import time

import pytest

from config import Config
from glpi_client import GlpiNotFound, GlpiRequestError, GlpiUnavailable
from glpi_gateway.attachments import PNG, Attachment
from glpi_gateway.tickets import (
    AmbiguousEntity,
    AttachmentReport,
    EntityNotFound,
    GatewaySetupError,
    TicketGateway,
    TicketRefused,
    UnknownCategory,
)
from tests.helpers import Clock, ticket_request

CNPJ_OPTION = {"name": "Dados Fiscais - CNPJ", "table": "glpi_plugin_fields_entitydadosfiscais", "field": "cnpjfield"}
ENTITY_OPTIONS = {
    "common": {"name": "Characteristics"},
    "1": {"name": "Complete name", "table": "glpi_entities", "field": "completename"},
    "2": {"name": "ID", "table": "glpi_entities", "field": "id"},
    "76666": CNPJ_OPTION,
    "76667": {"name": "Dados Fiscais - Inscrição estadual", "table": "glpi_plugin_fields_entitydadosfiscais"},
}
ENTITIES = [  # (id, complete name, stored CNPJ)
    (1, "Root entity > Cliente Alfa", "11.222.333/0001-81"),
    (2, "Root entity > Cliente Beta", "11444777000161"),
    (3, "Root entity > Cliente Gama", "12.ABC.345/01DE-35"),
    (4, "Root entity > Cliente Alfa Filial", "11.222.333/0002-62"),
    (6, "Root entity > Cliente Delta", "a1b2c3d4e5f668"),
]


class FakeGlpi:
    """Answers like GLPI for the calls the gateway makes; records them."""

    def __init__(self, options=None, entities=ENTITIES, existing=None):
        self.options = ENTITY_OPTIONS if options is None else options
        self.entities = list(entities)
        self.existing = existing or {("ITILCategory", 1), ("ITILCategory", 2), ("User", 8), ("RequestType", 7)}
        self.calls: list[tuple] = []
        self.created: list[dict] = []
        self.unavailable = False
        self.refuse_ticket = None
        self.search_delay = 0.0
        self.unreadable: set[str] = set()
        self.documents: dict[int, tuple[int, str | None]] = {}  # id -> (ticket id, comment)
        self.lose_upload_answer = False
        self._lock = threading.Lock()

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)
        if self.unavailable:
            raise GlpiUnavailable("down", "CONNECTION_FAILED")

    def count(self, name):
        return sum(1 for call in self.calls if call[0] == name)

    def list_search_options(self, itemtype):
        self._record("listSearchOptions", itemtype)
        return self.options

    def search(self, itemtype, criteria, forcedisplay=(), rows=50):
        self._record("search", itemtype, criteria, forcedisplay)
        time.sleep(self.search_delay)
        pattern = criteria[0]["value"].strip("^$").split("%")
        found = []
        for entity_id, name, stored in self.entities:
            rest, hit = stored.upper(), True
            for part in pattern:
                position = rest.find(part.upper())
                hit = hit and position >= 0
                rest = rest[position + len(part) :]
            if hit:
                found.append({"1": name, "2": entity_id, str(criteria[0]["field"]): stored})
        return found

    def get_item(self, itemtype, item_id):
        self._record("get", itemtype, item_id)
        if itemtype in self.unreadable:
            raise GlpiRequestError("You don't have permission", "ERROR_RIGHT_MISSING", 403)
        if itemtype == "Ticket" and 0 <= item_id - 101 < len(self.created):
            return {"id": item_id, "entities_id": self.created[item_id - 101]["entities_id"]}
        if itemtype == "Document" and item_id in self.documents:
            return {"id": item_id, "comment": self.documents[item_id][1]}
        if (itemtype, item_id) not in self.existing:
            raise GlpiNotFound("Item not found", "ERROR_ITEM_NOT_FOUND", 404)
        return {"id": item_id}

    def list_items(self, itemtype):
        self._record("list", itemtype)
        return [{"id": item_id} for kind, item_id in sorted(self.existing) if kind == itemtype]

    def create_item(self, itemtype, item_input):
        self._record("create", itemtype)
        if self.refuse_ticket:
            raise self.refuse_ticket
        self.created.append(item_input)
        return 100 + len(self.created)

    def upload_document(self, filename, content, mime, itemtype, item_id, entity_id, comment=None):
        self._record("upload", filename, itemtype, item_id, entity_id)
        document_id = 500 + self.count("upload")
        self.documents[document_id] = (item_id, comment)
        if self.lose_upload_answer:
            raise GlpiUnavailable("timed out", "TIMEOUT", request_sent=True)
        return document_id

    def list_subitems(self, itemtype, item_id, subitemtype, rows=1000):
        self._record("list", f"{itemtype}/{subitemtype}")
        assert (itemtype, subitemtype) == ("Ticket", "Document_Item")
        return [
            {"documents_id": document_id, "itemtype": "Ticket", "items_id": item_id}
            for document_id, (ticket_id, _) in self.documents.items()
            if ticket_id == item_id
        ]


def make_config(**overrides) -> Config:
    values = dict(glpi_url="https://glpi.example.com/apirest.php", glpi_user_token="u" * 40)
    values.update(overrides)
    return Config(**values)


def test_cnpj_field_is_discovered_by_its_label_among_fields_plugin_options():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    gateway.find_entity("11222333000181")
    assert glpi.calls[1][2][0]["field"] == 76666


def test_cnpj_label_match_ignores_case_and_uses_the_last_part_of_the_name():
    options = {"76670": {"name": "Cadastro - cnpj", "table": "glpi_plugin_fields_entitycadastros"}}
    gateway = TicketGateway(make_config(), FakeGlpi(options=options))
    gateway.check_setup()
    assert gateway.find_entity("11222333000181").id == 1


def test_start_up_refuses_when_no_fields_option_has_the_cnpj_label_and_lists_the_candidates():
    options = {"76667": {"name": "Dados Fiscais - Inscrição", "table": "glpi_plugin_fields_entitydadosfiscais"}}
    with pytest.raises(GatewaySetupError) as raised:
        TicketGateway(make_config(), FakeGlpi(options=options)).check_setup()
    assert "76667" in str(raised.value) and "GLPI_CNPJ_FIELD_LABEL" in str(raised.value)


def test_start_up_refuses_when_several_fields_options_have_the_cnpj_label():
    options = dict(ENTITY_OPTIONS, **{"76674": {"name": "Outros - CNPJ", "table": "glpi_plugin_fields_entityoutros"}})
    with pytest.raises(GatewaySetupError) as raised:
        TicketGateway(make_config(), FakeGlpi(options=options)).check_setup()
    assert "76666" in str(raised.value) and "76674" in str(raised.value)
    assert "GLPI_CNPJ_FIELD_ID" in str(raised.value)


def test_a_core_option_named_cnpj_is_not_mistaken_for_the_fields_option():
    options = {"5": {"name": "CNPJ", "table": "glpi_entities"}}
    with pytest.raises(GatewaySetupError):
        TicketGateway(make_config(), FakeGlpi(options=options)).check_setup()


def test_configured_cnpj_field_id_is_used_when_glpi_has_it():
    options = dict(ENTITY_OPTIONS, **{"76674": {"name": "Outros - CNPJ", "table": "glpi_plugin_fields_entityoutros"}})
    glpi = FakeGlpi(options=options)
    gateway = TicketGateway(make_config(glpi_cnpj_field_id=76674), glpi)
    gateway.check_setup()  # two options are labelled CNPJ: without the configured id, start-up would refuse
    assert gateway.find_entity("11222333000181").id == 1
    searches = [call for call in glpi.calls if call[0] == "search"]
    assert [criteria for _, _, criteria, _ in searches] == [
        [{"field": 76674, "searchtype": "contains", "value": "^11%222%333%0001%81$"}]
    ]


def test_configured_cnpj_field_id_unknown_to_glpi_stops_start_up():
    with pytest.raises(GatewaySetupError) as raised:
        TicketGateway(make_config(glpi_cnpj_field_id=76999), FakeGlpi()).check_setup()
    assert "GLPI_CNPJ_FIELD_ID=76999" in str(raised.value) and "76666" in str(raised.value)


@pytest.mark.parametrize(
    "variable, setting",
    [
        ("GLPI_DEFAULT_CATEGORY_ID", "glpi_default_category_id"),
        ("GLPI_REQUESTER_USER_ID", "glpi_requester_user_id"),
        ("GLPI_REQUEST_TYPE_ID", "glpi_request_type_id"),
    ],
)
def test_configured_ids_that_do_not_exist_in_glpi_stop_start_up(variable, setting):
    with pytest.raises(GatewaySetupError) as raised:
        TicketGateway(make_config(**{setting: 99999}), FakeGlpi()).check_setup()
    assert variable in str(raised.value)


def test_a_configured_id_the_api_profile_may_not_read_does_not_stop_start_up():
    glpi = FakeGlpi()
    glpi.unreadable = {"User"}
    gateway = TicketGateway(make_config(glpi_requester_user_id=8), glpi)
    gateway.check_setup()
    assert gateway.is_set_up


def test_checks_deferred_while_glpi_is_down_run_again_on_next_contact():
    glpi = FakeGlpi()
    glpi.unavailable = True
    gateway = TicketGateway(make_config(), glpi)
    with pytest.raises(GlpiUnavailable):
        gateway.check_setup()
    glpi.unavailable = False
    assert gateway.create_ticket(ticket_request()) == 101
    assert glpi.count("listSearchOptions") == 2


def test_checks_run_once_when_they_pass():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(glpi_default_category_id=1), glpi)
    gateway.check_setup()
    gateway.create_ticket(ticket_request())
    gateway.create_ticket(ticket_request())
    assert glpi.count("listSearchOptions") == 1 and glpi.count("get") == 1


@pytest.mark.parametrize(
    "cnpj, entity_id",
    [
        ("11222333000181", 1),  # stored formatted
        ("11444777000161", 2),  # stored bare
        ("12ABC34501DE35", 3),  # alphanumeric, stored formatted
        ("A1B2C3D4E5F668", 6),  # alphanumeric, stored bare in lower case
    ],
)
def test_entity_is_found_whichever_way_its_cnpj_is_stored(cnpj, entity_id):
    assert TicketGateway(make_config(), FakeGlpi()).find_entity(cnpj).id == entity_id


def test_search_anchors_the_pattern_and_forces_the_id_column():
    glpi = FakeGlpi()
    TicketGateway(make_config(), glpi).find_entity("11222333000181")
    _, itemtype, criteria, forcedisplay = glpi.calls[1]
    assert itemtype == "Entity"
    assert criteria == [{"field": 76666, "searchtype": "contains", "value": "^11%222%333%0001%81$"}]
    assert 2 in forcedisplay


def test_rows_whose_normalised_cnpj_differs_are_discarded():
    # GLPI's LIKE '%' can match more than the exact CNPJ (e.g. extra text around it).
    entities = [(9, "Root entity > Outra", "11.222.333/0001-81 (antigo)"), *ENTITIES]
    assert TicketGateway(make_config(), FakeGlpi(entities=entities)).find_entity("11222333000181").id == 1


def test_matriz_cnpj_does_not_find_the_filial():
    gateway = TicketGateway(make_config(), FakeGlpi(entities=[ENTITIES[3]]))
    with pytest.raises(EntityNotFound):
        gateway.find_entity("11222333000181")


def test_cnpj_carried_by_two_entities_is_ambiguous_and_names_them():
    entities = [(7, "Root entity > Dup A", "19.131.100/0001-85"), (8, "Root entity > Dup &#62; B", "19131100000185")]
    with pytest.raises(AmbiguousEntity) as raised:
        TicketGateway(make_config(), FakeGlpi(entities=entities)).find_entity("19131100000185")
    assert sorted(raised.value.names) == sorted(["Root entity > Dup A", "Root entity > Dup > B"])


def test_found_entity_is_cached_so_the_next_ticket_costs_one_call():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    gateway.create_ticket(ticket_request())
    calls_before = len(glpi.calls)
    gateway.create_ticket(ticket_request())
    assert glpi.calls[calls_before:] == [("create", "Ticket")]


def test_cached_entity_expires_after_the_ttl():
    glpi, clock = FakeGlpi(), Clock()
    gateway = TicketGateway(make_config(glpi_entity_cache_ttl=300), glpi, clock=clock)
    gateway.find_entity("11222333000181")
    clock.now += 299
    gateway.find_entity("11222333000181")
    clock.now += 2
    gateway.find_entity("11222333000181")
    assert glpi.count("search") == 2


def test_unknown_cnpj_is_cached_negatively_for_a_short_time():
    glpi, clock = FakeGlpi(), Clock()
    gateway = TicketGateway(make_config(glpi_entity_negative_cache_ttl=30), glpi, clock=clock)
    for _ in range(5):
        with pytest.raises(EntityNotFound):
            gateway.find_entity("19131100000185")
    assert glpi.count("search") == 1
    clock.now += 31
    with pytest.raises(EntityNotFound):
        gateway.find_entity("19131100000185")
    assert glpi.count("search") == 2


def test_entity_cache_observer_hears_a_miss_then_hits_until_the_entry_expires():
    clock, heard = Clock(), []
    gateway = TicketGateway(
        make_config(glpi_entity_cache_ttl=300, glpi_entity_negative_cache_ttl=30),
        FakeGlpi(),
        clock=clock,
        entity_cache_observer=heard.append,
    )
    gateway.find_entity("11222333000181")
    gateway.find_entity("11222333000181")
    for _ in range(2):
        with pytest.raises(EntityNotFound):
            gateway.find_entity("45723174000110")
    clock.now += 301
    gateway.find_entity("11222333000181")
    assert heard == [False, True, False, True, False]


def test_concurrent_lookups_of_one_uncached_cnpj_share_one_search():
    glpi = FakeGlpi()
    glpi.search_delay = 0.2
    gateway = TicketGateway(make_config(), glpi)
    gateway.check_setup()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(gateway.find_entity("11444777000161").id)) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 10
    assert glpi.count("search") == 1


def test_unknown_category_is_refused_before_anything_is_created():
    glpi = FakeGlpi()
    with pytest.raises(UnknownCategory):
        TicketGateway(make_config(), glpi).create_ticket(ticket_request(categoria=5))
    assert glpi.created == []


def test_known_categories_are_listed_once_and_cached():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    gateway.create_ticket(ticket_request(categoria=2))
    gateway.create_ticket(ticket_request(categoria=1))
    assert glpi.count("list") == 1
    assert [ticket["itilcategories_id"] for ticket in glpi.created] == [2, 1]


def test_default_category_is_used_without_listing_categories():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(glpi_default_category_id=1), glpi)
    gateway.create_ticket(ticket_request())
    assert glpi.created[0]["itilcategories_id"] == 1 and glpi.count("list") == 0


def test_ticket_goes_to_the_customer_entity_with_configured_requester_and_request_type():
    glpi = FakeGlpi()
    config = make_config(glpi_requester_user_id=8, glpi_request_type_id=7)
    TicketGateway(config, glpi).create_ticket(ticket_request(cnpj="11444777000161", email_cliente="m@example.com"))
    ticket = glpi.created[0]
    assert ticket["entities_id"] == 2
    assert ticket["requesttypes_id"] == 7
    assert ticket["_users_id_requester"] == 8
    assert ticket["_users_id_requester_notif"] == {"use_notification": 1, "alternative_email": "m@example.com"}
    assert "11.444.777/0001-61" in ticket["content"]


def test_glpi_refusing_the_ticket_is_reported_with_its_message_and_status():
    glpi = FakeGlpi()
    glpi.refuse_ticket = GlpiRequestError("You don't have permission to perform this action.", "ERROR_GLPI_ADD", 400)
    with pytest.raises(TicketRefused) as raised:
        TicketGateway(make_config(), glpi).create_ticket(ticket_request())
    assert raised.value.status == 400 and raised.value.message.startswith("You don't have permission")


# --- attachments ---------------------------------------------------------------------


def test_attachments_go_to_the_entity_glpi_holds_the_ticket_in():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    ticket_id = gateway.create_ticket(ticket_request(cnpj="11444777000161"))
    glpi.created[0]["entities_id"] = 4  # a GLPI business rule moved the new ticket
    files = [Attachment("a.png", b"\x89PNG", PNG), Attachment("b.png", b"\x89PNG", PNG)]
    report = gateway.attach_files(ticket_id, files)
    assert report == AttachmentReport([("a.png", 501), ("b.png", 502)], [], [])
    assert [call[1:] for call in glpi.calls if call[0] == "upload"] == [
        ("a.png", "Ticket", ticket_id, 4),
        ("b.png", "Ticket", ticket_id, 4),
    ]


def test_attachments_of_a_ticket_glpi_cannot_show_all_fail_without_uploading():
    glpi = FakeGlpi()
    report = TicketGateway(make_config(), glpi).attach_files(999, [Attachment("a.png", b"\x89PNG", PNG)])
    assert report.sent == [] and report.failed == [("a.png", "erro do GLPI (ERROR_ITEM_NOT_FOUND)")]
    assert glpi.count("upload") == 0


def test_each_document_carries_its_files_mark_in_its_comment():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    ticket_id = gateway.create_ticket(ticket_request())
    files = [Attachment("a.png", b"\x89PNG", PNG), Attachment("b.png", b"\x89PNG", PNG)]
    gateway.attach_files(ticket_id, files, ["marca 1/2", "marca 2/2"])
    assert glpi.documents == {501: (ticket_id, "marca 1/2"), 502: (ticket_id, "marca 2/2")}


def test_a_document_already_carrying_a_files_mark_is_adopted_not_uploaded_again():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    ticket_id = gateway.create_ticket(ticket_request())
    glpi.documents[499] = (ticket_id, "marca 1/2")  # uploaded by an attempt whose answer was lost
    files = [Attachment("a.png", b"\x89PNG", PNG), Attachment("b.png", b"\x89PNG", PNG)]
    report = gateway.attach_files(ticket_id, files, ["marca 1/2", "marca 2/2"], adopt=True)
    assert report == AttachmentReport([("a.png", 499), ("b.png", 501)], [], [])
    assert [call[1] for call in glpi.calls if call[0] == "upload"] == ["b.png"]


def test_glpi_lost_in_the_middle_leaves_the_rest_pending_with_its_error():
    glpi = FakeGlpi()
    gateway = TicketGateway(make_config(), glpi)
    ticket_id = gateway.create_ticket(ticket_request())
    glpi.lose_upload_answer = True
    files = [Attachment(name, b"\x89PNG", PNG) for name in ("a.png", "b.png", "c.png")]
    report = gateway.attach_files(ticket_id, files, ["1/3", "2/3", "3/3"])
    assert (report.sent, report.failed, report.pending) == ([], [], [0, 1, 2])
    assert report.pending_error is not None and report.pending_error.request_sent
    assert glpi.count("upload") == 1  # the rest were not tried


def test_no_attachments_cost_no_glpi_call():
    glpi = FakeGlpi()
    assert TicketGateway(make_config(), glpi).attach_files(101, []) == AttachmentReport([], [], [])
    assert glpi.calls == []


class TicketSearchGlpi:
    """Answers search/Ticket on the content like GLPI 10 does: content entity-encoded."""

    def __init__(self, rows):
        self.rows = rows
        self.criteria = None

    def search(self, itemtype, criteria, forcedisplay=(), rows=50):
        assert itemtype == "Ticket" and set(forcedisplay) == {2, 21}
        self.criteria = criteria
        return self.rows


def glpi10(content: str) -> str:
    return content.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")


def test_ticket_is_found_by_the_line_the_gateway_wrote_in_its_content():
    protocol = "0123456789abcdef0123456789abcdef"
    mine = glpi10(f"<p><strong>Nome:</strong> Maria<br><strong>Protocolo:</strong> {protocol}</p>")
    quoted_by_a_customer = glpi10(f"<p>{html.escape('<strong>Protocolo:</strong> ' + protocol)}</p>")
    glpi = TicketSearchGlpi([{"2": 9, "21": quoted_by_a_customer}, {"2": 12, "21": mine}, {"2": 15, "21": mine}])
    gateway = TicketGateway(make_config(), glpi)
    assert gateway.find_ticket_with_line("Protocolo", protocol) == 12
    assert glpi.criteria == [{"field": 21, "searchtype": "contains", "value": protocol}]


def test_no_ticket_carries_the_line():
    gateway = TicketGateway(make_config(), TicketSearchGlpi([]))
    assert gateway.find_ticket_with_line("Protocolo", "0123456789abcdef0123456789abcdef") is None
