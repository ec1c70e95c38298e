"""Email continuity for live chat: the worker that mails an offline visitor what they missed, through the
service's outbox. The pure link rules live in `inbox.read.continuity`.
"""
