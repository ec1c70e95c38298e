"""`python -m bench.serve CONFIG PORT`: the app as `switchboard serve` runs it, minus the access log
(one log line per request would be measured too)."""

from __future__ import annotations

import sys

import uvicorn

from inbox import config
from inbox.app import create_app

if __name__ == "__main__":
    app = create_app(config.load(sys.argv[1]))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
    )
