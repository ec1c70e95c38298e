"""Switchboard's core and server: store, service, events, auth, HTTP API, pages and CLI."""
