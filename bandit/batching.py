"""Coalescing Redis script calls into pipelines.

Each redis-py round trip costs ~100 µs of client overhead on top of the network,
more than VW's prediction. Calls issued while the event loop runs other handlers are
queued and sent together in one pipeline on the next tick, so under load many
decisions and rewards share one round trip. Alone, a call goes out at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError


class Script:
    """A Lua script known by its SHA1; loaded on first use and after a Redis restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._queue: list[tuple[Script, Sequence[Any], Sequence[Any], asyncio.Future]] = []
        self._flush_scheduled = False
        self._pending_sends: set[asyncio.Task] = set()

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((script, keys, args, future))
        if len(self._queue) >= self._max_batch:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._pending_sends.add(task)
            task.add_done_callback(self._pending_sends.discard)

    async def _send(self, batch: list[tuple[Script, Sequence[Any], Sequence[Any], asyncio.Future]]) -> None:
        try:
            results = await self._execute(batch)
        except BaseException as exc:  # connection errors etc.: every caller sees the failure
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            return
        for (*_, future), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list) -> list[Any]:
        if len(batch) == 1:   # alone: a plain call costs less than a pipeline
            script, keys, args, _ = batch[0]
            try:
                return [await self._client.evalsha(script.sha, len(keys), *keys, *args)]
            except NoScriptError:
                await self._client.script_load(script.source)
                return [await self._client.evalsha(script.sha, len(keys), *keys, *args)]
            except ResponseError as exc:   # a script error belongs to its caller, as in a pipeline
                return [exc]
        results = await self._pipeline(batch)
        missing = [i for i, r in enumerate(results) if _is_noscript(r)]
        if missing:   # Redis restarted or SCRIPT FLUSH: load and run those again
            for script in {batch[i][0] for i in missing}:
                await self._client.script_load(script.source)
            retried = await self._pipeline([batch[i] for i in missing])
            for i, result in zip(missing, retried):
                results[i] = result
        return results

    async def _pipeline(self, batch: list) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


def _is_noscript(result: Any) -> bool:
    return isinstance(result, NoScriptError) or (isinstance(result, ResponseError) and "NOSCRIPT" in str(result))
