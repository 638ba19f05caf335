"""The hot path's Redis calls, pipelined on one dedicated connection.

A redis-py round trip costs ~100-200 µs of client overhead (a sender task, a pool
checkout, a coroutine per reply read, timeouts) on top of the network: more than VW's
prediction, and it is paid per call when the load is light. Here a call is one packed
command, written at once when nothing is in flight (light load: no loop iteration is
spent waiting to batch) and otherwise appended to a buffer that is flushed once per
event-loop iteration; its reply is a future resolved straight from the socket's
``data_received`` by hiredis: no task per call, one write for everything issued in the
same iteration under load, one read for everything that arrived. Redis answers in
order, so replies match a FIFO of futures.

redis-py still opens the connection (TCP, unix socket, TLS, AUTH, SELECT: whatever
the URL says); the transport is then handed to this module's protocol.

Deadlines: Redis answers in order, so if the oldest call in flight has no reply after
``deadline`` seconds, nothing behind it will get one sooner (a frozen or overloaded
server). One timer per connection (not one per call) then fails every call in flight
with ``redis.exceptions.TimeoutError`` and drops the connection; for the next
``deadline`` seconds calls fail at once (a circuit breaker: requests get their 503 now
instead of each waiting out the deadline), then one call tries a fresh connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Script:
    """A Lua script known by its SHA1; sent as EVAL (which caches it) when Redis does not
    know it yet: first use, a Redis restart, SCRIPT FLUSH."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def replies_pending() -> bool:
    """Whether a request in this process is waiting on Redis right now: background work
    keeps its slices short then (bandit.learn.pacing), so the reply is not kept waiting."""
    return any(pipe._waiting for pipe in _PIPES)


class _Pipe(asyncio.Protocol):
    """One Redis connection: commands out in order, replies matched to a FIFO of futures."""

    def __init__(self, transport: asyncio.Transport, owner: object, deadline: float) -> None:
        self._transport = transport
        self._owner = owner   # the StreamWriter that opened it: it closes the transport when collected
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future] = deque()
        self._sent: deque[float] = deque()   # loop time each waiting call was sent, oldest first
        self._deadline = deadline
        self._watch: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.lost: Exception | None = None
        _PIPES.add(self)

    def send(self, packed: bytes) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.lost is not None:
            future.set_exception(self.lost)
            return future
        now = loop.time()
        if self._watch is None:
            self._watch = loop.call_at(now + self._deadline, self._check_deadline)
        if not self._waiting:   # nothing in flight: no one to batch with, send now
            self._waiting.append(future)
            self._sent.append(now)
            self._transport.write(packed)
            return future
        self._waiting.append(future)
        self._sent.append(now)
        self._out.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _check_deadline(self) -> None:
        """The oldest call past its deadline fails the connection; else look again when it is due."""
        self._watch = None
        if not self._waiting or self.lost is not None:
            return
        loop = asyncio.get_running_loop()
        due = self._sent[0] + self._deadline
        if loop.time() >= due - 0.001:
            self._fail(RedisTimeoutError(f"Redis did not answer within {self._deadline:g} s "
                                         "(redis_command_timeout_seconds)"))
            self._transport.abort()
        else:
            self._watch = loop.call_at(due, self._check_deadline)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.lost is None:
            out, self._out = self._out, []
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._waiting.popleft()
                self._sent.popleft()
                if not future.done():
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:   # garbage on the wire: start afresh
            self._fail(RedisConnectionError(f"Redis protocol error: {exc}"))
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def _fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._sent.clear()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    async def drained(self) -> None:
        """Wait until every reply sent for has arrived (or the connection is gone)."""
        if self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)

    def close(self) -> None:
        self._fail(RedisConnectionError("connection closed"))
        self._transport.close()


_PIPES: weakref.WeakSet[_Pipe] = weakref.WeakSet()


class ScriptBatcher:
    """Scripts and plain commands for the decide and reward paths, over one ``_Pipe``
    that is (re)opened on demand."""

    def __init__(self, client: aioredis.Redis, deadline: float = 1.0) -> None:
        self._client = client
        self._deadline = deadline
        self._pipe: _Pipe | None = None
        self._opening: asyncio.Future[_Pipe] | None = None
        self._failing_until = 0.0   # loop time until which calls fail at once (a call timed out)

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        reply = await self._send(("EVALSHA", script.sha, len(keys), *keys, *args))
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._send(("EVAL", script.source, len(keys), *keys, *args))
        return _result(reply)

    async def command(self, *command: Any) -> Any:
        """Any other command (e.g. the MGET a decision starts with), pipelined the same way."""
        return _result(await self._send(command))

    async def _send(self, command: tuple) -> Any:
        if self._failing_until and asyncio.get_running_loop().time() < self._failing_until:
            raise RedisTimeoutError(f"Redis did not answer within {self._deadline:g} s just now; failing fast")
        packed = hiredis.pack_command(command)
        pipe = self._pipe if self._pipe is not None and self._pipe.lost is None else await self._open()
        try:
            reply = await pipe.send(packed)
        except RedisTimeoutError:
            self._failing_until = asyncio.get_running_loop().time() + self._deadline
            raise
        self._failing_until = 0.0
        return reply

    async def _open(self) -> _Pipe:
        if self._opening is None:   # the first caller connects; the others wait for it
            self._opening = asyncio.ensure_future(self._connect())
            self._opening.add_done_callback(_retrieve)   # a connect given up on still fails quietly
        opening = self._opening
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the connection completes, and a cancelled background loop then
            # runs on for ever (a worker that never stops)
            async with asyncio.timeout(self._deadline):
                return await asyncio.shield(opening)
        except TimeoutError:
            self._failing_until = asyncio.get_running_loop().time() + self._deadline
            raise RedisTimeoutError(f"no connection to Redis within {self._deadline:g} s") from None
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _connect(self) -> _Pipe:
        connection = self._client.connection_pool.make_connection()
        await connection.connect()   # redis-py's handshake: TLS, AUTH, SELECT, client name
        # Take the transport over; redis-py must forget it (its __del__ would close it).
        writer, connection._writer, connection._reader = connection._writer, None, None  # noqa: SLF001
        pipe = _Pipe(writer.transport, writer, self._deadline)
        writer.transport.set_protocol(pipe)
        self._pipe = pipe
        return pipe

    async def close(self) -> None:
        if self._opening is not None:
            await asyncio.gather(self._opening, return_exceptions=True)
        if self._pipe is not None:
            await self._pipe.drained()
            self._pipe.close()
            self._pipe = None


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _result(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):   # a script's error belongs to its caller alone
        message = str(reply)
        raise (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message)
    return reply
