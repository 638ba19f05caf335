"""Coalescing Redis script calls into pipelines on one dedicated connection.

Each redis-py command round trip costs ~100 µs of client overhead (pool, retries,
instrumentation) on top of the network, more than VW's prediction. Calls are queued;
one sender writes everything queued as a single packed pipeline on a connection of its
own and reads the replies in order, while new calls queue for the next batch. Under
load many decisions and rewards share one round trip; alone, a call goes out at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

_Call = tuple[tuple, "Script | None", asyncio.Future]   # (command, script it runs, caller's future)


class Script:
    """A Lua script known by its SHA1; loaded on first use and after a Redis restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._queue: list[_Call] = []
        self._sender: asyncio.Task | None = None
        self._connection: AbstractConnection | None = None

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await self._enqueue(("EVALSHA", script.sha, len(keys), *keys, *args), script)

    async def command(self, *command: Any) -> Any:
        """Any other command (e.g. the MGET a decision starts with), batched the same way."""
        return await self._enqueue(command, None)

    async def _enqueue(self, command: tuple, script: Script | None) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((command, script, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def close(self) -> None:
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
                try:
                    results = await self._execute(batch)
                except Exception as exc:   # connection errors etc.: every caller in the batch sees it
                    await self._drop_connection()
                    results = [exc] * len(batch)
                for (*_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._sender = None

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        results = await self._pipeline(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:   # Redis restarted or SCRIPT FLUSH: load and run those again
            for script in {batch[i][1] for i in missing}:
                await self._client.script_load(script.source)
            retried = await self._pipeline([batch[i] for i in missing])
            for i, result in zip(missing, retried):
                results[i] = result
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        connection = await self._connect()
        commands = [command for command, _, _ in batch]
        await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        results: list[Any] = []
        for _ in batch:
            try:
                results.append(await connection.read_response())
            except ResponseError as exc:   # a script's error belongs to its caller alone
                results.append(exc)
        return results

    async def _connect(self) -> AbstractConnection:
        if self._connection is None:
            self._connection = self._client.connection_pool.make_connection()
            await self._connection.connect()
        return self._connection

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                await self._connection.disconnect()
            finally:
                self._connection = None
