"""A thin client for VK's HTTP API over httpx: method calls, file uploads, file downloads. No policy here.

Methods are `POST {api_base_url}/{method}` with form fields plus `access_token` and `v`; the token travels in
the body, never in a URL, so it cannot reach an access log. VK answers HTTP 200 with `{"response": …}` or
`{"error": {"error_code", "error_msg"}}`; the latter raises `VkApiError`. Transport failures and non-200
answers surface as httpx's own errors for the caller to classify.
"""

from __future__ import annotations

from typing import Any

import httpx

from channels.vk.settings import VkSettings


class VkApiError(Exception):
    """VK answered a method call with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: VK error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message


class TooLarge(Exception):
    """A download is larger than the limit; nothing was kept."""


class VkApi:
    """Calls VK for any community: the token is given per call."""

    def __init__(self, settings: VkSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    async def call(self, token: str, method: str, params: dict[str, str]) -> Any:
        """One API method; answers its `response`."""
        form = {**params, "access_token": token, "v": self.settings.api_version}
        response = await self.client.post(f"{self.settings.api_base_url.rstrip('/')}/{method}", data=form)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise httpx.DecodingError(f"{method}: VK answered {type(body).__name__}, not an object")
        if "error" in body:
            error = body["error"] if isinstance(body["error"], dict) else {}
            code = error.get("error_code")
            raise VkApiError(method, code if isinstance(code, int) else 0, str(error.get("error_msg") or "unknown"))
        if "response" not in body:
            raise httpx.DecodingError(f"{method}: VK answered neither response nor error")
        return body["response"]

    async def upload(self, url: str, field: str, filename: str, content_type: str, data: bytes) -> dict[str, Any]:
        """POST one file as multipart to an upload server; answers its JSON (passed on to the save method)."""
        response = await self.client.post(url, files={field: (filename, data, content_type)})
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise httpx.DecodingError(f"upload: VK answered {type(body).__name__}, not an object")
        if "error" in body:  # upload servers answer errors as {"error": "…"} with HTTP 200
            raise VkApiError("upload", 0, str(body["error"]))
        return body

    async def download(self, url: str, limit: int) -> bytes:
        """A file's bytes; raises `TooLarge` past `limit` (checked while streaming, not after the whole body)."""
        if not url.startswith(("https://", "http://")):
            raise httpx.InvalidURL(f"not an http(s) URL: {url[:100]!r}")
        async with self.client.stream("GET", url, follow_redirects=True) as response:  # doc links redirect
            response.raise_for_status()
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
