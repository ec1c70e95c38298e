"""The directory: agents, teams, inboxes, memberships, tokens — their writes (with their events, appended
through the service) and validation. May import features' pure settings checks (CSAT, continuity rules),
the gateway's quarantine, the service and below; never HTTP.
"""
