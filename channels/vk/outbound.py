"""Building an agent's reply for VK, and reading VK's errors. Pure: no I/O.

A reply becomes one or more `messages.send` calls (`Part`s): the text split at 4096 characters, the files
(at most 10 per message) riding on the first part and, when there are more, on parts of their own. Each part
carries a `random_id` derived from (inbox, our message id, part number): VK delivers a `random_id` once per
community and answers a repeat with the message it already sent, so a retried reply — after a timeout, a
crash, or a flood-control error halfway — sends nothing twice and needs no progress kept on our side.

VK answers HTTP 200 with `{"error": {"error_code", "error_msg"}}`; `failure` maps a code to the
`DeliveryError` the outbox understands (transient with `retry_after`, or permanent with a reason) and says
whether the person can no longer be written to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from channels.base import DeliveryError, Outbound, OutboundAttachment

TEXT_LIMIT = 4096  # characters per message (VK's documented limit)
MAX_ATTACHMENTS = 10  # per message
PHOTO_TYPES = {"image/jpeg", "image/png", "image/gif"}  # what photos.getMessagesUploadServer takes
PHOTO_MAX_BYTES = 50 * 1024 * 1024  # larger images go as documents

# code → (seconds to wait before retrying). VK sends no Retry-After; these are the waits its limits suggest.
TRANSIENT: dict[int, float] = {
    1: 5.0,  # unknown error occurred: "try again later"
    6: 1.0,  # too many requests per second
    9: 60.0,  # flood control (too many messages to one person)
    10: 5.0,  # internal server error
    29: 300.0,  # rate limit reached (the method's daily quota)
}
# code → reason shown to the agent; True when the person can no longer receive messages from the community.
PERMANENT: dict[int, tuple[str, bool]] = {
    5: ("VK rejected the community access token (authorization failed)", False),
    7: ('the community access token lacks the permission for this (grant it "messages" access)', False),
    15: ("VK denied access to this conversation", False),
    18: ("the customer's VK page was deleted or banned", True),
    27: ("VK rejected the community access token (group authorization failed)", False),
    100: ("VK rejected a parameter of the message", False),
    900: ("the customer is on the community's blacklist", True),
    901: ("the customer has not allowed messages from the community (or turned them off)", True),
    902: ("the customer's privacy settings do not allow messages from the community", True),
    914: ("the message is too long for VK", False),
    917: ("the community has no access to this chat", False),
    932: ("the community can't write to this conversation", True),
    945: ("the chat was disabled", False),
    950: ("VK no longer lets the community answer this message (reply timed out)", False),
}


@dataclass(frozen=True, slots=True)
class Part:
    """One `messages.send` call of a reply."""

    index: int
    text: str
    attachments: tuple[OutboundAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """A VK error as the outbox sees it, and whether the recipient should be marked unreachable."""

    error: DeliveryError
    unreachable: bool


def random_id(inbox_id: int, message_id: int, part: int) -> int:
    """A stable, non-zero 31-bit id for one part of one reply (0 would switch VK's deduplication off)."""
    digest = hashlib.sha256(f"switchboard:vk:{inbox_id}:{message_id}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def peer_of(message: Outbound) -> int:
    """The dialog to write to: the conversation's `thread_key`."""
    try:
        return int(message.thread_key)
    except ValueError:
        raise DeliveryError(f"conversation {message.conversation_id} has no VK peer id") from None


def parts(message: Outbound) -> list[Part]:
    """The messages one reply becomes, in order; raises `DeliveryError` when there is nothing to send."""
    chunks = split(message.text.strip())
    files = list(message.attachments)
    if not chunks and not files:
        raise DeliveryError("the message has neither text nor attachments")
    batches = [tuple(files[i : i + MAX_ATTACHMENTS]) for i in range(0, len(files), MAX_ATTACHMENTS)]
    result = [Part(0, chunks[0] if chunks else "", batches[0] if batches else ())]
    for chunk in chunks[1:]:
        result.append(Part(len(result), chunk))
    for batch in batches[1:]:
        result.append(Part(len(result), "", batch))
    return result


def split(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters, at a line break or a space when there is one."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text.rstrip())
    return pieces


def upload_kind(item: OutboundAttachment) -> str:
    """The upload route: `photo` for images VK takes as photos, `doc` for everything else."""
    return "photo" if item.content_type in PHOTO_TYPES and item.size <= PHOTO_MAX_BYTES else "doc"


def attachment_string(kind: str, saved: dict[str, object]) -> str:
    """`<type><owner_id>_<media_id>[_<access_key>]`, as `messages.send`'s `attachment` takes it."""
    owner, media = saved.get("owner_id"), saved.get("id")
    if not isinstance(owner, int) or not isinstance(media, int):
        raise DeliveryError(f"VK answered an unexpected saved {kind}: {saved!r}"[:300])
    key = saved.get("access_key")
    return f"{kind}{owner}_{media}_{key}" if isinstance(key, str) and key else f"{kind}{owner}_{media}"


def send_params(peer_id: int, part: Part, rid: int, attachments: list[str]) -> dict[str, str]:
    """The form fields of one `messages.send` (the token and version are added by the API client)."""
    params = {"peer_id": str(peer_id), "random_id": str(rid)}
    if part.text:
        params["message"] = part.text
    if attachments:
        params["attachment"] = ",".join(attachments)
    return params


def failure(code: int, message: str) -> Failure:
    """VK's error `code` (with its `error_msg`) as a `DeliveryError`."""
    if code in TRANSIENT:
        seconds = TRANSIENT[code]
        return Failure(DeliveryError(f"VK error {code}: {message}; retry in {seconds:g} s", seconds), False)
    reason, unreachable = PERMANENT.get(code, ("VK refused the message", False))
    return Failure(DeliveryError(f"{reason} (VK error {code}: {message})"), unreachable)
