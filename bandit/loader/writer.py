"""Profiles to Redis: MSET batches on a dedicated connection, acknowledgements awaited."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from bandit.store.keys import Keys

MSET_KEYS = 100            # profiles per MSET command in a batch's pipeline


class _ProfileWriter:
    """Writes a batch of profiles as one pipeline of MSETs of MSET_KEYS profiles each,
    on a dedicated connection, packed here: redis-py packs argument by argument, which
    would cost more than all the rest of the load. A batch's replies are read before
    the next batch is sent, so Redis stores one batch while the next is read."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None
        self._unread = 0
        self._prefix = keys.profile("")

    async def write(self, hashes: list[str], profiles: list[dict[str, Any]]) -> None:
        if not hashes:
            return
        keys = list(map(str.encode, map(self._prefix.__add__, hashes)))
        docs = list(map(orjson.dumps, profiles))
        pairs = list(map(b"$%d\r\n%b\r\n$%d\r\n%b\r\n".__mod__, zip(map(len, keys), keys, map(len, docs), docs)))
        parts: list[bytes] = []
        for at in range(0, len(pairs), MSET_KEYS):
            chunk = pairs[at:at + MSET_KEYS]
            parts.append(b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * len(chunk)))
            parts.extend(chunk)
        await self.flush()
        if self._connection is None:
            self._connection = self._pool.make_connection()
            await self._connection.connect()
        try:
            await self._connection.send_packed_command(b"".join(parts), check_health=False)
        except BaseException:
            await self.close()
            raise
        self._unread = len(parts) - len(pairs)

    async def flush(self) -> None:
        """Wait until Redis has stored what was sent; raises on an error reply."""
        try:
            while self._unread:
                await self._connection.read_response()
                self._unread -= 1
        except BaseException:
            await self.close()   # replies may be left unread: never reuse the connection
            raise

    async def close(self) -> None:
        self._unread = 0
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()
