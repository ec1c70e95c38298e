"""The inbound write path: the group-commit batcher (`batcher`), the set-based batch writer (`batch`), the
direct driver-level writer for the common case (`direct`) and its SQL (`sql`). Part of the service, the
only writer; called by `InboxService.deliver`.
"""
