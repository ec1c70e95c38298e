"""InboxService: the only writer of conversation data.

Every public method commits one transaction that also appends its events to the log, then publishes
those events. It knows nothing of HTTP or of any concrete channel; callers check who may do what.
The class is assembled from parts, one module each: `service_inbound` (customer messages),
`service_agent` (agents' replies and conversation changes), `service_records` (delivery results,
uploads, contacts), `privacy` (contact export and erasure, retention), `portal` (acknowledgements, portal replies), on the shared `service_base`.
"""

from __future__ import annotations

from inbox.realtime.broker import Broker
from inbox.service.agent import AgentWrites, ConversationChanges
from inbox.service.automation import AutomationWrites
from inbox.service.base import UNSET
from inbox.service.catalog import CatalogWrites
from inbox.service.continuity import ContinuityWrites
from inbox.service.inbound import InboundWrites
from inbox.service.ingest.batcher import DeliveryBatcher
from inbox.service.organizations import OrganizationWrites
from inbox.service.portal import PortalWrites
from inbox.service.privacy import PrivacyWrites
from inbox.service.proactive import ProactiveWrites
from inbox.service.records import ContactWrites, DeliveryResults, Uploads
from inbox.service.repair import Repairs
from inbox.service.surveys import SurveyWrites
from inbox.service.workflow import WorkflowWrites
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store

__all__ = ["UNSET", "ConversationChanges", "InboxService"]


class InboxService(
    AutomationWrites,  # before AgentWrites, whose helpers it builds on
    InboundWrites,
    AgentWrites,
    DeliveryResults,
    Uploads,
    ContactWrites,
    CatalogWrites,
    SurveyWrites,
    ContinuityWrites,
    ProactiveWrites,
    Repairs,
    PrivacyWrites,
    WorkflowWrites,
    OrganizationWrites,
    PortalWrites,
):
    """Writes conversations, messages and contacts; appends and publishes their events."""

    def __init__(self, store: Store, broker: Broker, blobs: BlobStore) -> None:
        super().__init__(store, broker, blobs)
        self.batcher = DeliveryBatcher(self)
