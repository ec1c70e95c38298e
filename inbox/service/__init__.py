"""The only writer of conversation data: conversations, messages, contacts, identities, labels, outbox rows.

Every public method commits one transaction that also appends its events to the log, then publishes them
(`InboxService`, assembled from one part per module: `inbound`, `agent`, `records`, `repair` on `base`).
`ingest/` writes inbound batches (group commit). May import `inbox.read`, `inbox.realtime`, `inbox.store`
and the shared basics (`inbox.errors`, `inbox.clock`, `inbox.config`, `inbox.auth`); never HTTP, a feature
package, the gateway or a channel.
"""

from inbox.service.core import UNSET, ConversationChanges, InboxService

__all__ = ["UNSET", "ConversationChanges", "InboxService"]
