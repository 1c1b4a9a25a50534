"""A stand-in for GLPI's legacy REST API (`apirest.php`), faithful to what a real GLPI answers.

It speaks the part of the API the gateway uses -- sessions, `listSearchOptions`, `search`, reading
items, creating tickets and attaching documents to them -- and reproduces the behaviour recorded
from a real GLPI 10.0.12 with the Fields plugin (`tests/transcripts/`, replayed by
`tests/test_sandbox_contract.py`), traps included: the CNPJ is a Fields-plugin search option whose
`equals` compares the plugin's row id, `contains` is a SQL LIKE, an empty search has no `data` key,
a session's entity rights are fixed when it is opened, GLPI 10 stores text HTML-encoded, bad ticket
input is accepted silently, a document without `entities_id` lands in the root entity...

How it is proven: each exchange recorded with that GLPI is a file `tests/transcripts/N-*.json`,
and `tests/test_sandbox_contract.py` replays them against the sandbox and compares the answers.
The comments cite them where the code does something because GLPI did:

    LAB#N: the recorded exchange tests/transcripts/N-*.json

(N may carry a letter, as in LAB#49b; "LAB#54-57" and "LAB#61, #306" cite several.)

Standard library only. Use it in-process::

    sandbox = GlpiSandbox(app_token="sandbox-app-token", user_tokens={"sandbox-user-token": 7})
    url = sandbox.start()          # "http://127.0.0.1:<port>/apirest.php"
    ...
    sandbox.stop()

or as a server: ``python -m glpi_sandbox --port 8088`` (``--help`` lists the options). Besides the
API, a few control endpoints under ``/_sandbox/`` let a separate process inspect and steer it
(call counters, faults, latency, new entities): see `ControlMixin._control` in control.py.

The modules: sandbox.py (GlpiSandbox: its state, request parsing, routing, lifecycle), made of
mixins that inherit the typed declaration of that state from base.py (SandboxBase): records.py
(entities, users, entity rights), sessions.py (API client checks, initSession, Session-Token),
search.py (the search engine), items.py (reading items and lists), tickets.py (creating tickets),
documents.py (documents and their files) and control.py (faults, /_sandbox/ endpoints); api.py
(answers, errors, sessions), searchoptions.py (search option tables, itemtypes), php.py (PHP, MySQL
and GLPI conventions), versions.py (what GLPI 11 answers differently), server.py (the HTTP server)
and __main__.py (the command line).
"""

from __future__ import annotations

from .api import NO_PERMISSION
from .sandbox import GlpiSandbox
from .searchoptions import FIELDS_OPTION_ID

__all__ = ["FIELDS_OPTION_ID", "NO_PERMISSION", "GlpiSandbox"]
