"""The webchat channel: the embeddable widget's websocket, uploads, loader and frame (DESIGN §4, §6).

`settings` (limits and per-inbox widget settings), `protocol` (tokens, identity, frames — pure), `files`
(upload policy — pure), `frame` (the widget documents), then `channel`, the one class that does I/O.
"""

from channels.webchat.channel import WebchatChannel
from channels.webchat.settings import WebchatSettings, WidgetSettings

__all__ = ["WebchatChannel", "WebchatSettings", "WidgetSettings"]
