"""Which id a mail is stored under: its Message-ID, made unique by a digest of its body when needed. Pure.

A Message-ID is chosen by the sender, and two different mails may carry the same one (a broken mailer, a
template, a forger). A mail is stored under its Message-ID when that id is new; when the id is stored with the
same body digest (or with none: mail stored before digests) it is the same mail sent again, stored once; when
the digest differs it is another mail, stored as `<id>#<digest>`. Replies still thread by the plain id.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ID = 512  # the store's external_id column


def digested_id(message_id: str, digest: str) -> str:
    """`<id>#<digest>`: the id of a second, different mail with this Message-ID (cut to fit the store)."""
    suffix = f"#{digest}"
    return message_id[: MAX_ID - len(suffix)] + suffix


def storage_id(message_id: str, digest: str, stored: Mapping[str, str | None]) -> str:
    """The id to store a mail under, given the digests stored under its Message-ID and its digested id."""
    if not digest or message_id not in stored or stored[message_id] in (digest, None):
        return message_id  # new, or the same mail again (the core answers the stored one)
    return digested_id(message_id, digest)


def is_stored(message_id: str, digest: str, stored: Mapping[str, str | None]) -> bool:
    """Whether this very mail (id and digest) is stored already."""
    if message_id in stored and stored[message_id] in (digest, None):
        return True
    return digested_id(message_id, digest) in stored
