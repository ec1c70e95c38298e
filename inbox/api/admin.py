"""HTTP API: the admin routes — inboxes, agents (with `/me` and tokens), teams, labels, canned responses —
gathered into the one `Api` table the app mounts."""

from __future__ import annotations

from inbox.api import agents, catalog, inboxes
from inbox.http.routing import Api

api = Api()
for module in (inboxes, agents, catalog):
    api.operations.extend(module.api.operations)
