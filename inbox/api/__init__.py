"""The JSON API under /api/v1: one module per resource, each exposing an `Api` route table."""
