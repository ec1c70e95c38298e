"""The app's services, typed: built once by the composition root (`inbox.app.create_app`) and handed to every
route and worker as the one slot `app.state.services`; `services(request)` reads it.

Objects of the feature packages (CSAT, continuity, routing, SLA clocks, …) live above this layer, so their
fields are typed `Any` here; everything below (the store, the service, the gateway, the realtime parts) is
typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the modules below import `services` themselves
    from starlette.requests import HTTPConnection

    from channels.base import Channel
    from inbox.auth import Authenticator, LoginThrottle, Sessions
    from inbox.config import Config
    from inbox.gateway.host import CoreHost
    from inbox.gateway.outbox import OutboxWorker
    from inbox.gateway.runners import ChannelRunners
    from inbox.http.metrics import Metrics
    from inbox.http.routing import Api
    from inbox.realtime.broker import Broker
    from inbox.realtime.hub import Hub
    from inbox.service import InboxService
    from inbox.store.blobs import BlobStore
    from inbox.store.engine import Store
    from inbox.store.lease import Leases


@dataclass(slots=True)
class Services:
    """Everything a request handler or worker may need, by name and type."""

    config: Config
    store: Store
    service: InboxService
    hub: Hub
    broker: Broker
    leases: Leases
    blobs: BlobStore
    host: CoreHost
    sessions: Sessions
    authenticator: Authenticator
    throttle: LoginThrottle
    channels: Mapping[str, Channel]
    outbox: OutboxWorker
    runners: ChannelRunners
    metrics: Metrics
    api_modules: list[Api]
    settings_validators: Mapping[str, Callable[[Mapping[str, Any]], None]] = field(default_factory=dict)
    workers: Any = None  # the lifespan's running workers (`/readyz` asks whether they started and run)
    # Feature packages' objects (above this layer): inbox.csat.Surveys, inbox.continuity.ContinuityWorker,
    # inbox.workflow's Router, SlaClocks, RuleEngine and WebhookWorker, inbox.portal's Portal and Acknowledgements.
    surveys: Any = None
    continuity: Any = None
    router: Any = None
    sla_clocks: Any = None
    portal: Any = None
    acknowledgements: Any = None
    rule_engine: Any = None
    webhooks: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def services(connection: HTTPConnection | Any) -> Services:
    """The app's services from a request or websocket (anything with `.app`)."""
    found: Services = connection.app.state.services
    return found
