"""Demo data (`switchboard demo`): realistic agents, inboxes and conversations, written through the
directory and the service.
"""
