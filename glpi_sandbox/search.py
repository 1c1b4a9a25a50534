"""The search engine (`search/<itemtype>`): GLPI's criteria, as MySQL would run them, on the sandbox's data."""

from __future__ import annotations

import re
from typing import Any

from .api import ApiError, Response, Session, paged_response, parse_range
from .base import SandboxBase
from .php import fold, like_regex, mysql_number, php_values, sort_key
from .searchoptions import FIELDS_TABLE, Itemtype
from .versions import search_sort

LIST_LIMIT = 15  # the user's list_limit preference: search pages default to 0-14
SEARCHTYPES = ("contains", "notcontains", "equals", "notequals")


class SearchMixin(SandboxBase):
    """Part of GlpiSandbox: `search/<itemtype>`, its criteria checked as GLPI checks them and run as MySQL runs
    GLPI's query (SQL precedence, LIKE, the collation, joined tables)."""

    def _search(self, session: Session, itemtype: Itemtype, params: dict) -> Response:
        """`search/<itemtype>`: GLPI's search engine on the sandbox's data (notes §4)."""
        options = self._search_options[itemtype.name]
        criteria = php_values(params.get("criteria", []))
        self._validate_criteria(criteria, options)
        start, end = parse_range(params.get("range"), (0, LIST_LIMIT - 1))
        # GLPI 10 sorts by the complete name (option 1) unless told otherwise, GLPI 11 by id (LAB11#45).
        explicit = str(params.get("sort", "")) in options
        sort = str(params["sort"]) if explicit else "1"
        order = "DESC" if params.get("order") == "DESC" else "ASC"
        columns = [
            "1",
            *(["80"] if itemtype.entity_column else []),
            *map(str, php_values(params.get("forcedisplay", []))),
            *self._criteria_fields(criteria),
            sort,
        ]
        columns = [column for column in dict.fromkeys(columns) if column in options]
        with self._lock:
            # Search sees what the user's authorization reaches now, including entities created
            # after the session was opened (LAB#305).
            reachable = self._reachable(session.user_id)
            found = [
                item
                for _, item in sorted(self._collection(itemtype).items())
                if self._visible(itemtype, item, reachable) and self._matches(itemtype, item, criteria)
            ]
            if explicit or self.version == 10:
                found.sort(
                    key=lambda item: sort_key(self._cell(itemtype, item, options[sort])[0]), reverse=order == "DESC"
                )
            elif order == "DESC":
                found.reverse()
            # Presence flags: GLPI tests them with isset(), so "withindexes=false" turns it on.
            keys = {column: options[column]["uid"] if "uid_cols" in params else column for column in columns}
            rows = [
                (item["id"], {keys[column]: self._cell(itemtype, item, options[column])[0] for column in columns})
                for item in found[start : end + 1]
            ]
        total = len(found)
        answer: dict[str, Any] = {
            "totalcount": total,
            "count": len(rows),
            "sort": search_sort(sort, explicit, self.version),
            "order": [order],
        }
        if rows:  # GLPI only sets "data" inside its row loop (LAB#31)
            answer["data"] = (
                {str(item_id): row for item_id, row in rows} if "withindexes" in params else [row for _, row in rows]
            )
        answer["content-range"] = f"{start}-{start + len(rows) - 1}/{total}"
        return paged_response(itemtype.name, answer, start, len(rows), total)

    def _validate_criteria(self, criteria: list, options: dict) -> None:
        for criterion in criteria:
            if isinstance(criterion, dict) and "criteria" in criterion:
                self._validate_criteria(php_values(criterion["criteria"]), options)
                continue
            if (
                not isinstance(criterion, dict)
                or not {"field", "searchtype", "value"} <= criterion.keys()
                or isinstance(criterion["value"], (dict, list))
            ):
                raise ApiError(400, "ERROR", "Malformed search criteria", doc=True)
            criterion["field"] = str(criterion["field"])
            criterion["value"] = str(criterion["value"])
            if criterion["field"] not in options:
                raise ApiError(400, "ERROR", "Bad field ID in search criteria", doc=True)
            if options[criterion["field"]]["nosearch"]:
                raise ApiError(400, "ERROR", "Forbidden field ID in search criteria", doc=True)
            if criterion["searchtype"] not in SEARCHTYPES:
                raise ApiError(
                    400,
                    "ERROR",
                    f"searchtype {criterion['searchtype']!r} is not supported by the "
                    f"GLPI sandbox (supported: {', '.join(SEARCHTYPES)})",
                    doc=True,
                )

    def _criteria_fields(self, criteria: list) -> list[str]:
        fields = []
        for criterion in criteria:
            if "criteria" in criterion:
                fields += self._criteria_fields(php_values(criterion["criteria"]))
            else:
                fields.append(criterion["field"])
        return fields

    def _matches(self, itemtype: Itemtype, item: dict, criteria: list) -> bool:
        """Criteria joined by their links with SQL precedence: NOT, then AND, then OR (LAB#207, #208)."""
        terms: list[list[bool]] = []  # OR-separated groups of AND-ed results
        for criterion in criteria:
            result: bool | None
            if "criteria" in criterion:
                result = self._matches(itemtype, item, php_values(criterion["criteria"]))
            else:
                result = self._criterion_matches(itemtype, item, criterion)
            if result is None:  # an empty value adds no condition (LAB#49b)
                continue
            link = str(criterion.get("link", "AND")).upper()
            if link.endswith("NOT"):
                result = not result
            if not terms or link.startswith("OR"):
                terms.append([result])
            else:
                terms[-1].append(result)
        return not terms or any(all(group) for group in terms)

    def _criterion_matches(self, itemtype: Itemtype, item: dict, criterion: dict) -> bool | None:
        option = self._search_options[itemtype.name][criterion["field"]]
        searchtype, value = criterion["searchtype"], criterion["value"]
        if value == "":
            return None
        cell, joined_id = self._cell(itemtype, item, option)
        if searchtype in ("equals", "notequals"):
            if option["table"] != itemtype.table:
                # On another table GLPI compares the joined row's id, not the text: for the Fields
                # option that is the plugin's row id (LAB#35, #101, #102).
                equal = joined_id is not None and joined_id == mysql_number(value)
            elif isinstance(cell, int):
                equal = cell == mysql_number(value)
            else:
                equal = cell is not None and fold(str(cell)).rstrip() == fold(value).rstrip()
            return equal if searchtype == "equals" else not equal
        negate = searchtype == "notcontains"
        if option["datatype"] == "number" and re.fullmatch(r"\s*\d+\s*", value):
            return (cell != int(value)) if negate else (cell == int(value))
        if value in ("NULL", "null"):  # IS NULL OR = ''  /  IS NOT NULL OR = ''
            return cell is not None if negate else cell in (None, "")
        regex = like_regex(value, encode_ampersand=self.version == 10)
        if regex is None:
            return None
        found = cell is not None and regex.fullmatch(fold(str(cell))) is not None
        return not found if negate else found  # notcontains keeps rows without a value (LAB#206)

    def _cell(self, itemtype: Itemtype, item: dict, option: dict) -> tuple[Any, int | None]:
        """(value shown in the column, id of the row the value comes from) for a search option."""
        table, column = option["table"], option["field"]
        if table == itemtype.table:
            return item.get(column), item["id"]
        if table == FIELDS_TABLE and itemtype.name == "Entity":
            row = self._fields_rows.get(item["id"])
            return (row["value"], row["id"]) if row else (None, None)
        joined = {
            "glpi_entities": (self._entities, "entities_id"),
            "glpi_itilcategories": (self._categories, "itilcategories_id"),
        }.get(table)
        if joined is None:
            return None, None
        records, key = joined
        value = item.get(key)
        record = records.get(value) if isinstance(value, int) else None
        return (record.get(column), record["id"]) if record else (None, None)
