"""PHP, MySQL and GLPI conventions the sandbox reproduces.

How PHP parses a query string and converts numbers, how MySQL compares and orders (number
coercion, the utf8mb4_unicode_ci collation, LIKE), and how GLPI 10 encodes the text it stores,
names uploaded files, sizes them and derives urgency and impact. Pure functions, no state.
"""

from __future__ import annotations

import html
import re
import secrets
import time
import unicodedata
import urllib.parse
from typing import Any

# GLPI 10 encodes these in every text it stores (Sanitizer); `&` first, so nothing is encoded twice.
HTML_ENCODING = (("&", "&#38;"), ("<", "&#60;"), (">", "&#62;"))
# ...and decodes stored text in this order, also understanding the legacy `&lt;`/`&gt;` (LAB#252, #263).
HTML_DECODING = (("&#62;", ">"), ("&#60;", "<"), ("&gt;", ">"), ("&lt;", "<"), ("&#38;", "&"))
RAW_SPECIAL_CHAR = re.compile(r"<|>|&(?!#?[a-zA-Z0-9]+;)")
ENCODED_SPECIAL_CHAR = re.compile(r"&#38;|&#60;|&#62;|&lt;|&gt;")
MYSQL_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_php_query(query: str) -> dict[str, Any]:
    """Parse a query string as PHP's parse_str does: `a[b][]=1` nests, later keys win.

    Arrays whose keys are exactly 0..n-1 come back as lists and the others as dicts, which is
    what GLPI sees after its own json_encode/json_decode round trip of form parameters.
    """
    result: dict[str, Any] = {}
    for raw_key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        path = php_key_path(raw_key)
        if path:
            _php_assign(result, path, value)
    return _php_arrays_to_json(result)


def php_key_path(raw_key: str) -> list[str]:
    """`criteria[0][field]` -> ["criteria", "0", "field"]; PHP rules for odd keys."""
    bracket = raw_key.find("[")
    subkeys = re.match(r"(?:\[[^\]]*\])+", raw_key[bracket:]) if bracket > 0 else None
    if subkeys is None:
        return [re.sub(r"[ .\[]", "_", raw_key)] if raw_key and bracket != 0 else []
    name = re.sub(r"[ .]", "_", raw_key[:bracket])
    return [name, *re.findall(r"\[([^\]]*)\]", subkeys.group())]


def _php_assign(node: dict, path: list[str], value: str) -> None:
    for depth, key in enumerate(path):
        if key == "":  # `name[]` appends
            key = str(max((int(k) + 1 for k in node if is_digits(k)), default=0))
        if depth == len(path) - 1:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child


def _php_arrays_to_json(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _php_arrays_to_json(item) for key, item in value.items()}
    if converted and list(converted) == [str(index) for index in range(len(converted))]:
        return list(converted.values())
    return converted


def is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def php_values(value: Any) -> list:
    """Iterate a PHP array whether it arrived as a list or as a dict."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def php_int(value: Any) -> int:
    """PHP's intval(): "12abc" is 12, "abc" is 0."""
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = re.match(r"\s*([+-]?\d+)", value)
        return int(match.group(1)) if match else 0
    return 1 if value else 0


def php_flag(value: Any) -> bool:
    """A boolean parameter as GLPI reads it: the strings "true" and "false" are booleans (notes, general
    conventions), anything else is truthy as in PHP ("" and "0" are false)."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return value not in ("", "0")
    return bool(value)


def mysql_number(value: str) -> float:
    """What MySQL compares when a number column meets a string: "2abc" is 2, "x" is 0."""
    match = MYSQL_NUMBER.match(value)
    return float(match.group()) if match else 0.0


def fold(text: str) -> str:
    """Case- and accent-insensitive form, as MySQL's utf8mb4_unicode_ci collation compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def is_html_encoded(text: str) -> bool:
    """GLPI 10 treats a text without raw `<`, `>`, `&` and with an encoded one as already encoded."""
    return RAW_SPECIAL_CHAR.search(text) is None and ENCODED_SPECIAL_CHAR.search(text) is not None


def encode_html(text: str) -> str:
    """How GLPI 10 stores the text a client sends (an already encoded text is kept as is, LAB#261)."""
    if is_html_encoded(text):
        return text
    for char, entity in HTML_ENCODING:
        text = text.replace(char, entity)
    return text


def decode_html(text: str) -> str:
    """What GLPI 10 returns for a stored text when asked with `X-GLPI-Sanitized-Content: false`."""
    if not is_html_encoded(text):
        return text
    for entity, char in HTML_DECODING:
        text = text.replace(entity, char)
    return text


def like_regex(value: str, encode_ampersand: bool) -> re.Pattern | None:
    """The LIKE pattern GLPI builds for `contains`, as a regex on folded text; None: no filter.

    The value is trimmed; `^` and `$` anchor, otherwise `%` is added on that side; a `%` typed by
    the user stays a wildcard while `_` is escaped (LAB#49d, #49e); `^` alone is `LIKE '%'`, any
    value but NULL (LAB#103); an empty value (also `^$`, `$`) filters nothing (LAB#49b).
    """
    text = value.strip()
    if text in ("", "^$", "$"):
        return None
    if encode_ampersand:  # GLPI 10 searches the stored, encoded text
        text = text.replace("&", "&#38;")
    if text == "^":
        pattern = "%"
    else:
        pattern = text[1:].lstrip() if text.startswith("^") else "%" + text
        pattern = pattern[:-1].rstrip() if pattern.endswith("$") else pattern + "%"
    return re.compile(".*".join(re.escape(fold(part)) for part in pattern.split("%")), re.DOTALL)


def plain_text(content: str) -> str:
    """The text GLPI derives a ticket title from: tags dropped, entities decoded, spaces collapsed."""
    text = html.unescape(re.sub(r"<[^>]*>", " ", content))
    return " ".join(text.split())


def seconds_between(start: str, end: str) -> int:
    """Seconds from one DATETIME to another, as PHP's strtotime() differences count them."""
    return int(time.mktime(time.strptime(end, DATETIME_FORMAT)) - time.mktime(time.strptime(start, DATETIME_FORMAT)))


def new_session_token() -> str:
    """A PHP session id like GLPI's: 26 characters from [a-v0-9] (LAB#01)."""
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def php_uniqid() -> str:
    """PHP's uniqid('', true), the prefix GLPI gives an uploaded file: "6b0b5b7e2c4f24.09751649" (LAB#221)."""
    now = time.time()
    return f"{int(now):08x}{int(now * 1_000_000) % 0x100000:05x}{secrets.randbelow(10**9) / 10**8:.8f}"


def file_size_text(size: float, units: tuple[str, ...]) -> str:
    """GLPI's Toolbox::getSize() in the given units: "206 o", "1.03 Kio" (LAB#221)."""
    for unit in units:  # noqa: B007 (the unit the loop stops at is the answer)
        if size <= 1024:
            break
        size /= 1024
    return f"{round(size, 2):g} {unit}"


def priority_level(value: Any) -> int:
    """Urgency or impact: 1 to 5, silently 3 when absent or out of range (LAB#109)."""
    level = php_int(value) if value is not None else 3
    return level if 1 <= level <= 5 else 3


def sort_key(value: Any) -> tuple:
    """MySQL order: NULL first, numbers by value, text by the case/accent-insensitive collation."""
    if value is None:
        return (0, 0, "")
    if isinstance(value, (int, float)):
        return (1, value, "")
    return (1, 0, fold(str(value)))
