"""The core's side of the channel port: the `Host` offered to channels, the outbox worker that sends replies,
the channel runners, admission control (backpressure) and quarantine. Writes conversation data only through
the service. May import the service and below; never HTTP or a concrete channel (only `inbox.app` names
those).
"""
