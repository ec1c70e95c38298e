"""Self-service answers (a small knowledge base served in the widget) and proactive messages.

`content` (Markdown, search terms, rule checks — pure), `search` (full-text queries per database),
`store` (reads and writes of articles, rules and measured visitor actions), `api` (the agents' and admins'
JSON API), `widget` (the visitors' endpoints, authorised by the widget's upload token) and `pages` (the
public article page and the admin page). Numbers for reports are in `inbox.reports.selfservice`.
"""
