"""Server-rendered pages: the agent inbox, login and setup (`base`), settings, reports, demo, CSAT and
help-center pages. The top layer with `inbox.api`: validates input, then calls one service or feature
method; never opens a write transaction.
"""
