"""GLPI's records in the sandbox: the seed data, new entities, edits, and what an entity right reaches."""

from __future__ import annotations

from .base import SandboxBase
from .searchoptions import ITEMTYPES, Itemtype

TECHNICIAN = 10  # the demo's technician, "tecnico"


class RecordsMixin(SandboxBase):
    """Part of GlpiSandbox: its entities, users, categories and request types, and who sees what."""

    # --- seed data -------------------------------------------------------------------------

    def _seed(self, seed: str) -> None:
        self._entities[0] = self._entity_record(0, "Root entity", None)
        for name, cnpj in (
            ("Cliente Alfa", "11.222.333/0001-81"),
            ("Cliente Beta", "11444777000161"),
            ("Cliente Gama", "12.ABC.345/01DE-35"),
            ("Cliente Alfa Filial", "11.222.333/0002-62"),
            ("Cliente Sem CNPJ", None),
        ):
            self.add_entity(name, cnpj)
        for user_id, name, realname, firstname, reach in (
            (2, "glpi", None, None, (0, True)),
            (7, "api", "Integração", "Serviço Flask", (0, True)),
            (8, "joao.solicitante", "Solicitante", "João", (0, True)),
            (9, "api_restrito", "Restrito", "API", (1, False)),
        ):
            self._users[user_id] = self._user_record(user_id, name, realname, firstname)
            self._reach[user_id] = reach
        self._categories[1] = self._category_record(1, "Suporte Técnico")
        self._request_types[1] = self._request_type_record(1, "Helpdesk", helpdesk_default=True)
        self._request_types[7] = self._request_type_record(7, "Portal Flask")
        self.technician_id = 7  # in the lab the API user assigned itself and answered (LAB#403, #407)
        if seed == "demo":
            self.add_entity("Cliente Delta", "a1b2c3d4e5f668")  # A1.B2C.3D4/E5F6-68, stored bare in lower case
            self.add_entity("Cliente Duplicado Matriz", "19.131.100/0001-85")  # the same CNPJ on two entities
            self.add_entity("Cliente Duplicado Cópia", "19131100000185")
            self._categories[2] = self._category_record(2, "Rede")
            self._categories[3] = self._category_record(3, "Impressoras")
            # A technician apart from the API user, to answer tickets in tests (control.py).
            self._users[TECHNICIAN] = self._user_record(TECHNICIAN, "tecnico", "Técnico", "Suporte")
            self._reach[TECHNICIAN] = (0, True)
            self.technician_id = TECHNICIAN

    def _entity_record(self, entity_id: int, name: str, parent_id: int | None) -> dict:
        parent = self._entities.get(parent_id) if parent_id is not None else None
        now = self._now()
        return {
            "id": entity_id,
            "name": name,
            "entities_id": parent_id,
            "completename": f"{parent['completename']} > {name}" if parent else name,
            "comment": None,
            "level": parent["level"] + 1 if parent else 1,
            "registration_number": None,
            "address": None,
            "postcode": None,
            "town": None,
            "state": None,
            "country": None,
            "website": None,
            "phonenumber": None,
            "fax": None,
            "email": None,
            "date_mod": now,
            "date_creation": now,
        }

    def _user_record(self, user_id: int, name: str, realname: str | None, firstname: str | None) -> dict:
        return {
            "id": user_id,
            "name": name,
            "phone": None,
            "phone2": None,
            "mobile": None,
            "realname": realname,
            "firstname": firstname,
            "locations_id": 0,
            "language": None,
            "is_active": 1,
            "comment": None,
            "auths_id": 0,
            "authtype": 1,
            "last_login": None,
            "date_mod": self._created,
            "is_deleted": 0,
            "profiles_id": 0,
            "entities_id": 0,
            "date_creation": self._created,
        }

    def _category_record(self, category_id: int, name: str) -> dict:
        return {
            "id": category_id,
            "entities_id": 0,
            "is_recursive": 1,
            "itilcategories_id": 0,
            "name": name,
            "completename": name,
            "comment": None,
            "level": 1,
            "knowbaseitemcategories_id": 0,
            "users_id": 0,
            "groups_id": 0,
            "code": "",
            "ancestors_cache": "[]" if self.version == 10 else None,  # LAB#211, LAB11#211
            "sons_cache": None,
            "is_helpdeskvisible": 1,
            "tickettemplates_id_incident": 0,
            "tickettemplates_id_demand": 0,
            "changetemplates_id": 0,
            "problemtemplates_id": 0,
            "is_incident": 1,
            "is_request": 1,
            "is_problem": 1,
            "is_change": 1,
            "date_mod": self._created,
            "date_creation": self._created,
        }

    def _request_type_record(self, type_id: int, name: str, helpdesk_default: bool = False) -> dict:
        return {
            "id": type_id,
            "name": name,
            "is_helpdesk_default": int(helpdesk_default),
            "is_followup_default": int(helpdesk_default),
            "is_mail_default": 0,
            "is_mailfollowup_default": 0,
            "is_active": 1,
            "is_ticketheader": 1,
            "is_itilfollowup": 1,
            "comment": None,
            "date_mod": self._created,
            "date_creation": self._created,
        }

    # --- public API for tests and benchmarks ------------------------------------------------

    def add_entity(self, name: str, cnpj: str | None = None, parent_id: int = 0) -> int:
        """Create an entity (with a Fields row when `cnpj` is given) and return its id.

        Sessions opened before cannot create tickets in it (their rights were fixed at
        initSession, LAB#306) but do find it by search (LAB#305).
        """
        with self._lock:
            if parent_id not in self._entities:
                raise ValueError(f"no entity {parent_id}")
            entity_id = max(self._entities) + 1
            self._entities[entity_id] = self._entity_record(entity_id, name, parent_id)
            if cnpj is not None:
                self.set_entity_cnpj(entity_id, cnpj)
            return entity_id

    def set_entity_cnpj(self, entity_id: int, cnpj: str) -> None:
        """What `PUT Entity/<id> {"input": {"cnpjfield": ...}}` does: set or create the Fields row."""
        with self._lock:
            if entity_id not in self._entities:
                raise ValueError(f"no entity {entity_id}")
            row = self._fields_rows.get(entity_id)
            if row is None:
                row_id = max((row["id"] for row in self._fields_rows.values()), default=0) + 1
                row = self._fields_rows[entity_id] = {"id": row_id}
            row["value"] = cnpj

    # --- entity rights -----------------------------------------------------------------------

    def _reachable(self, user_id: int) -> frozenset[int]:
        """The entities the user's authorization reaches now: its entity, and the sub-entities if recursive."""
        home, recursive = self._reach[user_id]
        reached = {home}
        if recursive:
            pending = [home]
            while pending:
                parent = pending.pop()
                children = [eid for eid, entity in self._entities.items() if entity["entities_id"] == parent]
                reached.update(children)
                pending.extend(children)
        return frozenset(reached)

    def edit_record(self, itemtype: str, item_id: int, **columns: object) -> None:
        """Change columns of an entity, user, category or request type, as an administrator would in
        GLPI's web interface (a test recreating a lab's data renames things, sets a default profile...)."""
        if itemtype not in ("Entity", "User", "ITILCategory", "RequestType"):
            raise ValueError(f"edit_record does not edit {itemtype} records")
        with self._lock:
            record = self._collection(ITEMTYPES[itemtype]).get(item_id)
            if record is None:
                raise ValueError(f"no {itemtype} {item_id}")
            unknown = sorted(set(columns) - set(record))
            if unknown:
                raise ValueError(f"{itemtype} records have no {unknown}")
            record.update(columns, date_mod=self._now())

    def _collection(self, itemtype: Itemtype) -> dict[int, dict]:
        if itemtype.name == "Ticket_User":
            return {row["id"]: row for row in self.ticket_users}
        return {
            "Ticket": self.tickets,
            "ITILFollowup": self.followups,
            "ITILSolution": self.solutions,
            "Entity": self._entities,
            "ITILCategory": self._categories,
            "User": self._users,
            "RequestType": self._request_types,
            "Document": self.documents,
        }[itemtype.name]

    def _visible(self, itemtype: Itemtype, item: dict, entities: frozenset[int]) -> bool:
        if itemtype.name == "Entity":
            return item["id"] in entities
        if itemtype.name == "Ticket":
            return item["entities_id"] in entities and not item["is_deleted"]
        if itemtype.name in ("ITILFollowup", "ITILSolution", "Ticket_User"):  # what its ticket's reader sees
            ticket = self.tickets.get(item["tickets_id"] if "tickets_id" in item else item["items_id"])
            return ticket is not None and self._visible(ITEMTYPES["Ticket"], ticket, entities)
        if itemtype.name in ("Document", "Document_Item"):  # never recursive here: only their own entity
            return item["entities_id"] in entities
        if itemtype.name == "ITILCategory":  # a recursive category is seen from its sub-entities
            return item["entities_id"] in entities or bool(
                item["is_recursive"] and any(item["entities_id"] in self._ancestors(eid) for eid in entities)
            )
        return True

    def _ancestors(self, entity_id: int) -> set[int]:
        ancestors = set()
        parent = self._entities[entity_id]["entities_id"] if entity_id in self._entities else None
        while parent is not None:
            ancestors.add(parent)
            parent = self._entities[parent]["entities_id"]
        return ancestors
