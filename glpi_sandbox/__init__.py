"""A stand-in for GLPI's legacy REST API (`apirest.php`), faithful to what a real GLPI answers.

It speaks the part of the API the gateway uses -- sessions, `listSearchOptions`, `search`, reading
items, creating tickets and attaching documents to them, and a ticket's life after creation:
follow-ups, solutions, actors and status changes -- and reproduces what a real GLPI 10.0.12 with the
Fields plugin answered, traps included: the CNPJ is a Fields-plugin search option whose `equals`
compares the plugin's row id, `contains` is a SQL LIKE, an empty search has no `data` key, a
session's entity rights are fixed when it is opened, GLPI 10 stores text HTML-encoded, bad ticket
input is accepted silently, a document without `entities_id` lands in the root entity, a follow-up
on a closed ticket is accepted... With `version=11` (``--glpi-version 11``) it answers as GLPI
11.0.6 did to the same requests: text stored and returned as sent, the creation message without
"(id)" and with the name escaped, links to `/api.php/v1`, search sorted by id; versions.py lists
every difference.

How it is proven: each exchange recorded with the GLPI 10 lab is a file `tests/transcripts/N-*.json`,
the same request answered by the GLPI 11 lab is `tests/transcripts-11/N-*.json` (what changed is
summed up in `tests/transcripts-11/_DIFFERENCES.md`), and `tests/test_sandbox_contract.py` replays
both sets against the sandbox, each against its version, and compares the answers. Its docstring
says which exchanges are not replayed, and why. The comments cite them where the code does
something because GLPI did:

    LAB#N: the recorded exchange tests/transcripts/N-*.json (GLPI 10; GLPI 11 answered alike)
    LAB11#N: the same exchange answered by GLPI 11, tests/transcripts-11/N-*.json

(N may carry a letter, as in LAB#49b; "LAB#54-57" and "LAB#61, #306" cite several.) Where the
sandbox goes beyond the recordings it follows GLPI's source (10.0.19, the API notes' Part B), and the
comment says so: a requester's follow-up reopening a solved ticket, `pending`, approving a
solution, the refusals... The same rules serve GLPI 11, whose answers to the recorded life of a
ticket (400-425) match GLPI 10's but for the text. `tests/test_sandbox_ticket_life.py` tests them.

Standard library only. Use it in-process::

    sandbox = GlpiSandbox(app_token="sandbox-app-token", user_tokens={"sandbox-user-token": 7})
    url = sandbox.start()          # "http://127.0.0.1:<port>/apirest.php"
    ...
    sandbox.stop()

or as a server: ``python -m glpi_sandbox --port 8088`` (``--help`` lists the options). Besides the
API, control endpoints under ``/_sandbox/`` let a separate process inspect and steer it (call
counters, faults, latency, new entities): see `ControlMixin._control` in control.py.

Playing the technician: a test of a feature that follows a ticket needs someone to answer it. The
sandbox does it with GLPI's effects on the ticket, as a technician would through the API, by
`technician_id` (user 10 "tecnico" in the demo data; in the lab's data user 7, the API user, which
is how the lab recorded it) or any user given: in-process with `add_actor()` (assign),
`add_followup()` (public or private), `add_solution()` and `set_ticket_status()`; from another
process with ``POST /_sandbox/tickets/<id>/actors``, ``.../followups``, ``.../solutions`` and
``.../status`` (and ``GET .../followups``). These are not API calls: they are not counted and suffer
no fault or latency. A test may instead open a session of its own and use the API itself (`POST
ITILFollowup`, `POST ITILSolution`, `POST Ticket_User`, `PUT Ticket/<id>`), which the sandbox serves
as GLPI does; the author is then that session's user. `sandbox.clock` (`time.time` by default) is
the sandbox's time, which a test may stop or move to see the delays GLPI counts.

Not modelled: profiles and their rights beyond entity reach (every session may read private
follow-ups, as the lab's Super-Admin and technician could), tasks, validations, groups, pending
reasons, notifications, `with_*` options of GET (refused with an `ERROR`), the `empty` searchtype
GLPI 11 lists (refused like any other the sandbox does not run).

The modules: sandbox.py (GlpiSandbox: its state, request parsing, routing, lifecycle), made of
mixins that inherit the typed declaration of that state from base.py (SandboxBase): records.py
(entities, users, entity rights), sessions.py (API client checks, initSession, Session-Token),
search.py (the search engine), items.py (reading items and lists), tickets.py (creating tickets),
lifecycle.py (status, actors, PUT Ticket), timeline.py (follow-ups and solutions), documents.py
(documents and their files) and control.py (faults, /_sandbox/ endpoints); api.py (answers,
errors, sessions), searchoptions.py (search option tables, itemtypes), php.py (PHP, MySQL and GLPI
conventions), versions.py (what GLPI 11 answers differently), server.py (the HTTP server) and
__main__.py (the command line).
"""

from __future__ import annotations

from .api import NO_PERMISSION
from .sandbox import GlpiSandbox
from .searchoptions import FIELDS_OPTION_ID

__all__ = ["FIELDS_OPTION_ID", "NO_PERMISSION", "GlpiSandbox"]
