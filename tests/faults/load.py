"""A load client that records what the service promised: every 2xx reward (the service
acknowledged it, so it must be logged and learned exactly once) and every non-2xx answer
(status, error code, when), so a checker can hold the service to its acknowledgements and
a scenario can time the first 503 and the recovery."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson

OFFERS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
PREFERRED = ("a", "b", "c")   # the offer that earns reward 1.0, per context n


@dataclass(frozen=True)
class Ack:
    """A reward the service answered 2xx: it must be in the log exactly once, with this value."""
    event_id: str
    slot: int
    offer: str
    reward: float
    t: float          # seconds since the load started


@dataclass(frozen=True)
class Failure:
    """A non-2xx answer (status 0: no answer at all: refused, reset or timed out)."""
    what: str          # "decide" or "reward"
    status: int
    code: str | None   # the JSON error code, when there was one
    t: float


@dataclass
class Record:
    """Everything the load client saw; times are seconds since ``started`` (monotonic)."""
    started: float = field(default_factory=time.monotonic)
    acked: dict[str, Ack] = field(default_factory=dict)
    decided: list[float] = field(default_factory=list)     # when each 2xx decide came back
    failures: list[Failure] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)            # every event id a decide was sent for

    def now(self) -> float:
        return time.monotonic() - self.started

    def first_failure_after(self, t: float, status: int = 503) -> float | None:
        """Seconds from ``t`` to the first answer with ``status`` sent after it (None: none)."""
        times = [f.t for f in self.failures if f.status == status and f.t >= t]
        return min(times) - t if times else None

    def recovered_after(self, t: float) -> float | None:
        """Seconds from ``t`` to the first 2xx decide after the last failure following ``t``."""
        after = [f.t for f in self.failures if f.t >= t]
        last_bad = max(after) if after else t
        ok = [d for d in self.decided if d > last_bad]
        return min(ok) - t if ok else None

    def codes(self) -> dict[str, int]:
        """How many failures of each status/code, e.g. {"503 redis_oom": 12}."""
        out: dict[str, int] = {}
        for f in self.failures:
            key = f"{f.status} {f.code}" if f.code else str(f.status)
            out[key] = out.get(key, 0) + 1
        return out

    def dump(self, path: Path) -> None:
        """One JSON object per line: the acks, then the failures (for a post-mortem)."""
        with open(path, "wb") as fh:
            for ack in self.acked.values():
                fh.write(orjson.dumps({"ack": asdict(ack)}) + b"\n")
            for failure in self.failures:
                fh.write(orjson.dumps({"failure": asdict(failure)}) + b"\n")


async def _error_code(response: aiohttp.ClientResponse) -> str | None:
    try:
        return (await response.json(content_type=None))["error"]["code"]
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return None


class Load:
    """``workers`` concurrent decide-then-reward loops at about ``rate`` pairs per second in
    all, against whichever of ``bases`` is next (a scenario may replace the list, e.g. with
    the new port of a restarted service). Never raises on a failed request: it records it."""

    running: ClassVar[set[Load]] = set()   # started, not stopped: deploy.deployment stops them on a failure

    def __init__(self, bases: list[str], *, workers: int = 4, rate: float = 100.0, api_key: str | None = None,
                 timeout: float = 10.0, decide_extra: Callable[[int], dict[str, Any]] | None = None,
                 tag: str | None = None) -> None:
        self.bases = list(bases)
        self.workers = workers
        self.rate = rate
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.decide_extra = decide_extra
        self.tag = tag or uuid.uuid4().hex[:6]
        self.record = Record()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._counter = itertools.count()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> Load:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                              headers=self.headers)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        Load.running.add(self)
        return self

    async def stop(self) -> Record:
        """Stop sending; requests in flight are answered (or time out) first. Idempotent."""
        if self._stop.is_set():
            return self.record
        self._stop.set()
        Load.running.discard(self)
        await asyncio.gather(*self._tasks)
        if self._session is not None:
            await self._session.close()
        return self.record

    async def _worker(self) -> None:
        interval = self.workers / self.rate if self.rate > 0 else 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            n = next(self._counter)
            bases = self.bases
            if bases:
                await self._pair(bases[n % len(bases)], n)
            pause = interval - (time.monotonic() - began)
            if pause > 0 or not bases:
                await asyncio.sleep(max(pause, 0.05 if not bases else 0.0))
            if self.record.failures and self.record.failures[-1].status == 0:
                await asyncio.sleep(0.02)   # the service is down: do not spin on refused connects

    async def _post(self, what: str, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON body of a 2xx answer, or None (recorded as a failure)."""
        assert self._session is not None
        try:
            async with self._session.post(url, json=body) as response:
                if 200 <= response.status < 300:
                    return await response.json()
                self.record.failures.append(Failure(what, response.status, await _error_code(response),
                                                    self.record.now()))
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, ValueError):
            self.record.failures.append(Failure(what, 0, None, self.record.now()))
        return None

    async def _pair(self, base: str, n: int) -> None:
        event_id = f"{self.tag}-{n}"
        context = n % len(PREFERRED)
        body: dict[str, Any] = {"channel": "web", "context": {"n": context}, "offers": OFFERS, "event_id": event_id}
        if self.decide_extra is not None:
            body.update(self.decide_extra(n))
        self.record.sent.add(event_id)
        decision = await self._post("decide", f"{base}/v1/decide", body)
        if decision is None:
            return
        self.record.decided.append(self.record.now())
        offer = decision["slots"][0]["offer_id"]
        reward = 1.0 if offer == PREFERRED[context] else 0.0
        answer = await self._post("reward", f"{base}/v1/reward", {"event_id": event_id, "reward": reward})
        if answer is not None:
            self.record.acked[event_id] = Ack(event_id, 1, offer, reward, self.record.now())
