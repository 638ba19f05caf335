"""The HTTP edge of a real ``nextbest serve`` against slow and vanishing clients, over a
raw socket: a body that does not arrive within ``body_timeout_seconds`` is a 408 JSON
error; a client that hangs up mid-body is one INFO line in the service log, no traceback.
(A real process: aiohttp's test server cancels the handler on disconnect, ``run_app``
does not.)"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.harness import Harness, wait_until

HEAD = (b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n")


@pytest.mark.timeout(60)
async def test_slow_and_vanishing_request_bodies(harness: Harness):
    service = await harness.start(env={"NEXTBEST_BODY_TIMEOUT_SECONDS": "0.3"})
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(HEAD + b'{"channel": "web", ')   # and then nothing more
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    _, _, rest = (await asyncio.wait_for(reader.read(65536), 5)).partition(b"\r\n\r\n")
    assert orjson.loads(rest)["error"]["code"] == "body_timeout"
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(HEAD + b'{"channel": "web", ')
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()

    async def logged():
        return "client disconnected during POST /v1/decide" in service.log_path.read_text()
    await wait_until(logged, timeout=5, what=f"the disconnect line\n{service.log_tail()}")
    log = service.log_path.read_text()
    line = next(line for line in log.splitlines() if "client disconnected" in line)
    assert " INFO " in line and "Traceback" not in log and log.count("client disconnected") == 1
