"""The Graph API over one shared `httpx.AsyncClient`: JSON calls with a bearer token, media upload, and
media download with a size limit. Thin on purpose: no policy here; a non-2xx answer raises `GraphError`
(HTTP status, parsed body, Retry-After) for `errors.graph_error` to read, transport errors pass through.
Never logs tokens or bodies.
"""

from __future__ import annotations

from typing import Any

import httpx


class GraphError(Exception):
    """Graph answered with an error status."""

    def __init__(self, status: int, body: Any, retry_after: str | None) -> None:
        super().__init__(f"Graph API answered HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


class TooLarge(Exception):
    """A media file is larger than the configured limit."""


class Graph:
    """Calls relative to `base_url` (`https://graph.facebook.com/v21.0`); absolute URLs are used as given."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    async def get(self, path: str, token: str, params: dict[str, str] | None = None) -> Any:
        response = await self._client.get(self.url(path), params=params, headers=_auth(token))
        return _json(response)

    async def post(self, path: str, token: str, body: dict[str, Any]) -> Any:
        response = await self._client.post(self.url(path), json=body, headers=_auth(token))
        return _json(response)

    async def upload(self, phone_number_id: str, token: str, filename: str, content_type: str, data: bytes) -> str:
        """POST /{phone_number_id}/media (multipart) → the media id to send."""
        response = await self._client.post(
            self.url(f"{phone_number_id}/media"),
            data={"messaging_product": "whatsapp", "type": content_type},
            files={"file": (filename, data, content_type)},
            headers=_auth(token),
        )
        answer = _json(response)
        media_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(response.status_code, answer, None)
        return media_id

    async def download(self, url: str, token: str, limit: int) -> bytes:
        """GET a media URL with the bearer token, refusing more than `limit` bytes."""
        async with self._client.stream("GET", url, headers=_auth(token)) as response:
            if response.status_code >= 400:
                await response.aread()
                raise GraphError(response.status_code, _body(response), response.headers.get("retry-after"))
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"larger than {limit} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    async def close(self) -> None:
        await self._client.aclose()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: httpx.Response) -> Any:
    body = _body(response)
    if response.status_code >= 400 or body is None:
        raise GraphError(response.status_code, body, response.headers.get("retry-after"))
    return body
