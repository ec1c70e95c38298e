"""Attachments over real HTTP, on both databases: upload, download headers, access through the message's
conversation or the uploader, and oversize uploads refused while streaming with nothing stored."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox.api import shapes
from inbox.api.attachments import content_disposition, safe_content_type, safe_filename
from tests.api_world import MAX_ATTACHMENT, World, row_counts


def stored_files(world: World) -> list[str]:
    directory = Path(world.server.state.config.storage.directory)
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\photo.png", "photo.png"),
        ("bad\x00name\n.txt", "badname.txt"),
        ("..", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_safe_filename(raw: str | None, expected: str) -> None:
    assert safe_filename(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("image/png", "image/png"),
        ("Text/Plain; charset=utf-8", "text/plain"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_safe_content_type(raw: str | None, expected: str) -> None:
    assert safe_content_type(raw) == expected


def test_content_disposition_has_ascii_fallback_and_exact_name() -> None:
    assert content_disposition('résumé "v2".pdf') == (
        "attachment; filename=\"r_sum_ _v2_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"
    )


async def test_upload_download_and_access(world: World) -> None:
    delivered = await world.deliver("support", "1")
    data = b"%PDF-1.4 pretend\n" * 100
    async with world.client("ann") as ann, world.client("bob") as bob, world.client("admin") as admin:
        uploaded = await ann.post("/api/v1/attachments", files={"file": ("résumé.pdf", data, "application/pdf")})
        assert uploaded.status_code == 201, uploaded.text
        item = uploaded.json()
        shapes.AttachmentOut.model_validate(item)
        assert item["filename"] == "résumé.pdf" and item["size"] == len(data)
        assert item["sha256"] == hashlib.sha256(data).hexdigest() and item["content_type"] == "application/pdf"
        url = item["url"]

        got = await ann.get(url)
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in got.headers["content-disposition"]
        assert got.headers["x-content-type-options"] == "nosniff"
        assert (await bob.get(url)).status_code == 404  # someone else's unsent upload
        assert (await admin.get(url)).status_code == 200

        # Bob cannot attach Ann's upload to anything.
        other = await world.deliver("sales", "2", sender="z")
        stolen = await bob.post(
            f"/api/v1/conversations/{other.conversation_id}/messages", json={"body": "", "attachment_ids": [item["id"]]}
        )
        assert stolen.status_code == 422 and "not an unsent upload of yours" in stolen.json()["error"]["detail"]

        sent = await ann.post(
            f"/api/v1/conversations/{delivered.conversation_id}/messages",
            json={"body": "", "kind": "note", "attachment_ids": [item["id"]]},
        )
        assert sent.status_code == 201, sent.text
        assert [a["id"] for a in sent.json()["attachments"]] == [item["id"]]
        shapes.MessageOut.model_validate(sent.json())
        listed = (await ann.get(f"/api/v1/conversations/{delivered.conversation_id}/messages")).json()
        assert listed["items"][-1]["attachments"][0]["sha256"] == item["sha256"]
        assert (await ann.get(url)).status_code == 200
        assert (await bob.get(url)).status_code == 404  # attached in an inbox Bob is not in
        reused = await ann.post(
            f"/api/v1/conversations/{delivered.conversation_id}/messages",
            json={"body": "again", "kind": "note", "attachment_ids": [item["id"]]},
        )
        assert reused.status_code == 422

        assert (await ann.get("/api/v1/attachments/999999")).status_code == 404
    async with world.client() as anonymous:
        assert (await anonymous.get(url)).status_code == 401
        refused = await anonymous.post("/api/v1/attachments", files={"file": ("a.txt", b"x", "text/plain")})
        assert refused.status_code == 401


async def test_bad_uploads_are_refused_and_store_nothing(world: World) -> None:
    async with world.client("ann") as http:
        exact = await http.post("/api/v1/attachments", files={"file": ("ok.bin", b"x" * MAX_ATTACHMENT)})
        assert exact.status_code == 201, exact.text
        before_rows = await row_counts(world.store)
        before_files = stored_files(world)

        one_over = await http.post("/api/v1/attachments", files={"file": ("big.bin", b"x" * (MAX_ATTACHMENT + 1))})
        assert one_over.status_code == 413
        assert one_over.json()["error"] == {
            "code": "too_large",
            "detail": f"file: attachments may be at most {MAX_ATTACHMENT} bytes",
        }
        declared = await http.post("/api/v1/attachments", files={"file": ("huge.bin", b"x" * (MAX_ATTACHMENT * 8))})
        assert declared.status_code == 413

        boundary = "sbtestboundary"

        async def chunked() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            for _ in range(40):  # 40 KiB without a Content-Length header
                yield b"y" * 1024
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = await http.post(
            "/api/v1/attachments",
            content=chunked(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert streamed.status_code == 413, streamed.text

        for kwargs, detail in [
            ({"files": {"other": ("a.txt", b"x")}}, "file: a multipart file field named 'file' is required"),
            ({"files": {"file": ("empty.txt", b"")}}, "file: the file is empty"),
            ({"json": {"file": "abc"}}, "expected multipart/form-data"),
            (
                {"files": [("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))]},
                "body: Too many files",
            ),
        ]:
            response = await http.post("/api/v1/attachments", **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 422, (kwargs, response.text)
            assert detail in response.json()["error"]["detail"], response.text
        assert await row_counts(world.store) == before_rows
        assert stored_files(world) == before_files
