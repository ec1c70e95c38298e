"""Events and their delivery: the event log (`events`), the broker (in-process or Redis), the hub that fans
events out to agents in order, and the lean websocket server underneath. Appends nothing itself: the
service appends events inside its transactions. May import `inbox.store` and the shared basics.
"""
