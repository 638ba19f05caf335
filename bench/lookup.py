"""Per-decision profile lookup latency: the one MGET (profile + catalog version) a
decision starts with, through the same batched connection the service uses, against
the embedded Redis. Sequential calls (no batching help) and 32 concurrent callers.

    .venv/bin/python bench/lookup.py [--profiles 100000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time

import orjson
import redis.asyncio as aioredis

from bandit.store.embedded import EmbeddedRedis
from bandit.store.identity import SubscriberHasher
from bandit.store.keys import Keys
from bandit.store.store import Store


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6  # noqa: E731
    return f"p50 {pick(0.5):.0f} µs, p99 {pick(0.99):.0f} µs, mean {statistics.fmean(ordered) * 1e6:.0f} µs"


async def main(profiles: int, calls: int) -> None:
    directory = tempfile.mkdtemp(prefix="nblk", dir="/tmp")
    server = EmbeddedRedis(directory).start()
    client = aioredis.Redis.from_url(server.url)
    keys, hasher = Keys("bench"), SubscriberHasher(b"bench-secret")
    store = Store(client, keys)
    try:
        rng = random.Random(1)
        ids = [f"+7900{i:07d}" for i in range(profiles)]
        profile = orjson.dumps({"tariff": "smart", "balance": 120.5, "services": ["sms_pack", "mail"],
                                "tenure_months": 24, "region": "msk", "long_distance_minutes": 168})
        for start in range(0, profiles, 5000):
            await client.mset({keys.profile(hasher(i)): profile for i in ids[start:start + 5000]})

        async def lookup() -> float:
            started = time.perf_counter()
            await store.mget([keys.profile(hasher(rng.choice(ids))), keys.catalog_version])
            return time.perf_counter() - started

        sequential = [await lookup() for _ in range(calls)]
        print(f"sequential ({calls} calls): {percentiles(sequential)}")

        async def caller(n: int) -> list[float]:
            return [await lookup() for _ in range(n)]
        started = time.perf_counter()
        results = await asyncio.gather(*(caller(calls // 32) for _ in range(32)))
        elapsed = time.perf_counter() - started
        concurrent = [s for r in results for s in r]
        print(f"32 concurrent callers: {percentiles(concurrent)}; {len(concurrent) / elapsed:.0f} lookups/s")
    finally:
        await store.close()
        await client.aclose()
        server.stop(force=True)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    options = parser.parse_args()
    asyncio.run(main(options.profiles, options.calls))
