"""The core's error tree. HTTP status mapping happens once, in `inbox.http.routing`.

InboxError
 ├── NotFound        404  "conversation 42 not found"
 ├── Forbidden       403  the caller may not see or change this
 ├── Unauthorized    401  no or bad credentials
 ├── Conflict        409  the state forbids the change
 ├── Invalid         400/422  the input is malformed or names something that does not exist
 ├── TooLarge        413  a body or file exceeds a configured limit
 ├── Throttled       429  too many attempts; `retry_after` seconds
 └── ConfigError     (startup) a config key is missing or wrong; the message names the dotted key
"""

from __future__ import annotations


class InboxError(Exception):
    """Base of every error the core raises on purpose."""

    status = 400
    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(InboxError):
    status = 404
    code = "not_found"


class Forbidden(InboxError):
    status = 403
    code = "forbidden"


class Unauthorized(InboxError):
    status = 401
    code = "unauthorized"


class Conflict(InboxError):
    status = 409
    code = "conflict"


class Invalid(InboxError):
    status = 422
    code = "invalid"


class TooLarge(InboxError):
    status = 413
    code = "too_large"


class Throttled(InboxError):
    status = 429
    code = "throttled"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConfigError(InboxError):
    code = "config"
