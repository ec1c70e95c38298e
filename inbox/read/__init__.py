"""Reading conversation data: inbox-list queries and keyset pagination (`queries`, `listing`), who may see
what (`access`), the JSON shapes of rows (`views`: the one place a conversation's JSON is made), and the
continuity link rules (`continuity`). Writes nothing. May import `inbox.store` and the shared basics.
"""
