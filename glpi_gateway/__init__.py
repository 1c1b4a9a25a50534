"""The GLPI ticket gateway: a contact form's JSON in, a ticket in the customer's GLPI entity out.

The domain modules (tickets, delivery, idempotency, validation, ...) know nothing of HTTP;
store/ keeps the shared state (SQLite or Redis); web/ is the HTTP face. app.py at the
repository root composes them.
"""
