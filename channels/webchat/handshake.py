"""Who a widget socket speaks for, decided from its `hello`: a new or returning visitor (by the signed
visitor token), and the site's identity claim, which an inbox may require to be verified by its HMAC."""

from __future__ import annotations

from channels.base import InboxInfo
from channels.webchat import protocol
from channels.webchat.connection import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, Refused
from channels.webchat.protocol import Visitor
from channels.webchat.settings import WidgetSettings


def visitor_of_hello(
    token_key: str, inbox: InboxInfo, widget: WidgetSettings, hello: protocol.Hello
) -> tuple[Visitor, str]:
    """The visitor and the visitor token to hand back in the welcome; raises `Refused` (the close to send)
    for a token this server did not issue or an identity the inbox requires verified and is not."""
    if hello.visitor_token is None:
        visitor_id = protocol.new_visitor_id()
    else:
        found = protocol.visitor_of(token_key, inbox.id, hello.visitor_token)
        if found is None:
            raise Refused(CLOSE_UNAUTHORIZED, "invalid_token", "visitor_token: not a token this server issued")
        visitor_id = found
    claimed = hello.identity
    if widget.require_identity_verification and claimed is not None:
        if claimed.hash is None:
            raise Refused(CLOSE_FORBIDDEN, "identity_unverified", "identity.hash: required by this inbox")
        if not protocol.identity_ok(inbox.secret, claimed.id, claimed.hash):
            raise Refused(CLOSE_FORBIDDEN, "identity_unverified", "identity.hash: does not match identity.id")
    visitor = protocol.visitor_for(inbox.id, visitor_id, claimed, inbox.secret)
    return visitor, protocol.visitor_token(token_key, inbox.id, visitor_id)
