"""HTTP API: admin routes (filled in by its issue)."""

from __future__ import annotations

from inbox.http import Api

api = Api()
