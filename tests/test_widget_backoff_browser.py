"""The widget's wait after `slow_down` frames, evaluated in Chromium from the module the widget loads.

After a short outage a visitor must not wait a minute: the wait never drops below the server's retry_after,
doubles per slow_down in a row, is capped at 8 s and is jittered (so visitors do not return together).
"""

from __future__ import annotations

from typing import Any

from tests.browser import browser
from tests.servers.app import LiveServer

__all__ = ["browser"]  # the fixture, imported for pytest

EVALUATE = """async () => {
  const { slowDownWait, SLOW_DOWN_MAX_SECONDS } = await import("/static/widget/backoff.js");
  const at = (r) => () => r;
  const streaks = [...Array(12).keys()];
  return {
    max: SLOW_DOWN_MAX_SECONDS,
    low: streaks.map((s) => slowDownWait(1, s, at(0))),
    high: streaks.map((s) => slowDownWait(1, s, at(1))),
    serverFloor: slowDownWait(20, 6, at(0)),
    tiny: slowDownWait(0.01, 0, at(0)),
    junk: slowDownWait("x", 0, at(0.5)),
    spread: new Set(Array.from({ length: 50 }, () => Math.round(slowDownWait(1, 3)))).size,
  };
}"""


async def test_slow_down_backoff_is_capped_jittered_and_starts_at_the_server_time(
    server: LiveServer, browser: Any
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/healthz")
    result = await page.evaluate(EVALUATE)
    await page.close()
    assert result["max"] == 8
    assert max(result["high"]) <= 8000  # an outage never makes a visitor wait longer than 8 s between tries
    assert min(result["low"]) >= 1000  # and never sooner than the server asked
    assert result["low"][:4] == [1000, 1500, 3000, 6000]  # doubling (lowest jitter: ×0.75), first try at once
    assert result["high"][:3] == [1250, 2500, 5000]
    assert result["low"][5:] == [6000] * 7 and result["high"][5:] == [8000] * 7
    assert result["serverFloor"] == 20000  # a longer retry_after from the server is honoured as it is
    assert result["tiny"] == 200 and result["junk"] == 1000
    assert result["spread"] > 10  # jitter: 50 visitors at the same streak do not come back together
