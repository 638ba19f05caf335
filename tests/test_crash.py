"""Crash safety of the real service, end to end: "a reward that got a 2xx is learned
exactly once and logged exactly once, across crashes and restarts".

The service runs as a subprocess (``python -m bandit.cli serve``) on the embedded Redis
it starts in its data directory, and on the Redis at REDIS_URL when that is set. Client
streams post decide + reward pairs; the service is killed with SIGKILL while traffic
flows, restarted on the same data, given more traffic, and finally stopped with SIGTERM.
Then the decision log (DSJSON), the final checkpoint in Redis, and the model weights are
checked against what the client was told:

1. every acknowledged reward is in the log exactly once, with its reward;
2. no event (and no stream entry) is logged twice, and the log is in stream order;
3. the checkpoint's examples-learned count equals the number of learnable logged events;
4. the checkpointed VW model equals a fresh learner trained on the log, line by line,
   in log order (a double or missed learn changes the weights).
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bandit.config import load_settings
from bandit.store.keys import LEARNER_GROUP
from policies.learner import Learner, LearnerSettings
from policies.vwtext import action_line, shared_line
from tests.harness import CHECKPOINT_EVERY_EVENTS, Harness, Service, _s, read_lines

STREAMS = 8                  # concurrent client streams
KILL_AFTER = 300             # acknowledged rewards before the SIGKILL (plus a random 0..39)
SETTLE_TIMEOUT = 30.0
OFFERS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
REASONS = ("r0", "r1", "r2", "r3")
PREFERRED = {"r0": "a", "r1": "b", "r2": "c", "r3": "a"}   # the offer that earns reward 1.0


# --------------------------------------------------------------------------- traffic
@dataclass
class Traffic:
    acked: dict[str, dict[int, float]] = field(default_factory=dict)   # event id → slot → reward, each 2xx
    shown: dict[str, list[str]] = field(default_factory=dict)          # event id → the offer of each slot
    sent: set[str] = field(default_factory=set)               # every event id a decide was sent for
    unexpected: list[str] = field(default_factory=list)       # non-2xx answers while the service was up
    reasons: dict[str, str] = field(default_factory=dict)
    killed: bool = False


def _decide_body(event_id: str, reason: str) -> dict[str, Any]:
    return {"channel": "contact_center", "context": {"reason": reason}, "offers": OFFERS, "event_id": event_id}


async def _pair(session: aiohttp.ClientSession, base: str, traffic: Traffic, event_id: str, reason: str) -> None:
    """One decision and its reward; the reward counts once the service answered it 2xx."""
    traffic.sent.add(event_id)
    traffic.reasons[event_id] = reason
    async with session.post(f"{base}/v1/decide", json=_decide_body(event_id, reason)) as response:
        if response.status != 200:
            if not traffic.killed:
                traffic.unexpected.append(f"decide {event_id}: {response.status} {await response.text()}")
            return
        slots = [s["offer_id"] for s in (await response.json())["slots"]]
    traffic.shown[event_id] = slots
    await _reward_slots(session, base, traffic, event_id, range(1, len(slots) + 1))


async def _reward_slots(session: aiohttp.ClientSession, base: str, traffic: Traffic, event_id: str,
                        slots) -> None:
    """Each slot's own reward: 1.0 where the slot shows the offer the reason prefers."""
    for slot in slots:
        offer = traffic.shown[event_id][slot - 1]
        reward = 1.0 if offer == PREFERRED[traffic.reasons[event_id]] else 0.0
        async with session.post(f"{base}/v1/reward", json={"event_id": event_id, "offer_id": offer,
                                                           "reward": reward}) as response:
            body = await response.read()
            if 200 <= response.status < 300:
                traffic.acked.setdefault(event_id, {})[slot] = reward
            elif not traffic.killed:
                traffic.unexpected.append(f"reward {event_id} slot {slot}: {response.status} {body!r}")
            else:
                return


async def _complete(base: str, traffic: Traffic) -> None:
    """After a restart, what a channel would do: post the slot rewards a crash cut short."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for event_id, acked in list(traffic.acked.items()):
            missing = [s for s in range(1, len(traffic.shown[event_id]) + 1) if s not in acked]
            if missing:
                await _reward_slots(session, base, traffic, event_id, missing)


async def _stream(session: aiohttp.ClientSession, base: str, traffic: Traffic, tag: str, stop: asyncio.Event,
                  pairs: int | None = None) -> None:
    """Decide + reward, one after the other, until ``stop`` (or ``pairs`` done); after the
    kill the first connection error ends the stream."""
    i = 0
    while not stop.is_set() and (pairs is None or i < pairs):
        event_id = f"{tag}-{i}-{uuid.uuid4().hex[:8]}"
        reason = REASONS[i % len(REASONS)]
        i += 1
        try:
            await _pair(session, base, traffic, event_id, reason)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            if traffic.killed:
                return
            raise


async def _run_pairs(base: str, traffic: Traffic, tag: str, streams: int, pairs: int) -> None:
    stop = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(_stream(session, base, traffic, f"{tag}{s}", stop, pairs) for s in range(streams)))


async def _stats(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/v1/stats") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _wait_settled(h: Harness, service: Service) -> dict[str, Any]:
    """Wait until the learner has learned every joined event (/v1/stats: examples_learned ==
    events_joined) and the log has written up to the stream's last entry. If the learner
    runs ahead of the join count (a double learn), stop waiting once nothing moves."""
    r = h.redis()
    deadline = time.monotonic() + SETTLE_TIMEOUT
    history: list[tuple[int, int]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            stats = await _stats(session, service.base)
            learned = stats["model"]["examples_learned"]
            joined = stats["counters"].get("events_joined", 0)
            last_id = _s(r.xinfo_stream(h.keys.joined)["last-generated-id"])
            log_done = _s(r.get(h.keys.log_offset)) == last_id
            groups = {_s(g["name"]): _s(g["last-delivered-id"]) for g in r.xinfo_groups(h.keys.joined)}
            delivered = groups.get(LEARNER_GROUP) == last_id
            if learned == joined and log_done:
                return stats
            history.append((learned, joined))
            if delivered and log_done and len(history) >= 10 and len(set(history[-10:])) == 1:
                return stats          # settled, but not equal: the assertions will say how
            if time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- checks
def _learner_settings() -> LearnerSettings:
    return load_settings(env={}).learner      # the service runs with no learner settings


def _learn_logged(learner: Learner, line: dict[str, Any]) -> None:
    """What bandit.learn.training.learn_event does, from the DSJSON line instead of the stream."""
    c = line["c"]
    shared = {namespace: tokens for namespace, tokens in c.items() if not namespace.startswith("_")}
    actions = [item["Offer"] for item in c["_multi"]]
    learner.learn_slots(shared_line(shared), [action_line(a) for a in actions],
                        [(o["_a"][0], o["_p"][0], -o["_label_cost"]) for o in line["_outcomes"]])


def _weight_diffs(a: Learner, b: Learner) -> tuple[int, int, float]:
    """(nonzero weights in a, indices that differ by more than 1e-6, max difference) over the
    weights and, for stride slots 1 and 2, VW's adaptive and normalization accumulators."""
    vw_a, vw_b = a._vw, b._vw
    assert vw_a.num_weights() == vw_b.num_weights()
    nonzero = differ = 0
    worst = 0.0
    for offset in (0, 1, 2):
        for index in range(vw_a.num_weights()):
            x, y = vw_a.get_weight(index, offset), vw_b.get_weight(index, offset)
            if offset == 0 and x != 0.0:
                nonzero += 1
            d = abs(x - y)
            if d > 1e-6 * max(1.0, abs(x)):
                differ += 1
            worst = max(worst, d)
    return nonzero, differ, worst


def _checkpoint(h: Harness) -> dict[str, Any]:
    raw = h.redis().hgetall(h.keys.model)
    assert raw and b"blob" in raw, "no model checkpoint in Redis"
    return {"blob": raw[b"blob"], "learned": int(raw[b"learned"]), "version": int(raw[b"version"]),
            "offset": raw[b"offset"].decode(), "args": raw[b"args"].decode()}


def _sid_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


def check_exactly_once(h: Harness, traffic: Traffic) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Assertions 1-4; returns the log lines and the final checkpoint. On failure the
    services' logs are printed (pytest shows them with the failure)."""
    try:
        return _check_exactly_once(h, traffic)
    except AssertionError:
        for service in h.services:
            print(service.log_tail())
        raise


def _check_exactly_once(h: Harness, traffic: Traffic) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = read_lines(h.data_dir / "decisions")
    event_ids = [line["EventId"] for line in lines]
    stream_ids = [line["_nb"]["stream_id"] for line in lines]
    counts = collections.Counter(event_ids)

    # (2) no event, and no stream entry, is logged twice; the log is in stream (= learn) order
    twice = {e: n for e, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} events logged more than once: {dict(list(twice.items())[:10])}"
    assert len(set(stream_ids)) == len(stream_ids), "a stream entry was logged twice"
    assert stream_ids == sorted(stream_ids, key=_sid_key), "the log is not in stream order"

    # (1) every acknowledged reward is logged exactly once, with its reward
    by_id = {line["EventId"]: line for line in lines}
    missing = [e for e in traffic.acked if e not in by_id]
    assert not missing, f"{len(missing)} of {len(traffic.acked)} acknowledged rewards are not in the log: {missing[:10]}"
    wrong = [(e, slot, r, by_id[e]["_nb"]["slots"][slot - 1], by_id[e]["_nb"]["kind"])
             for e, acked in traffic.acked.items() for slot, r in acked.items()
             if by_id[e]["_nb"]["slots"][slot - 1] != {"slot": slot, "offer": traffic.shown[e][slot - 1],
                                                      "reward": r, "rewards": 1}
             or by_id[e]["_nb"]["kind"] != "joined"]
    assert not wrong, f"acknowledged rewards logged wrong (event, slot, sent, logged, kind): {wrong[:10]}"
    # nothing the client never sent; unacknowledged ones only from requests in flight at the kill
    assert set(by_id) <= traffic.sent, f"unknown events in the log: {sorted(set(by_id) - traffic.sent)[:10]}"
    unacked = [e for e in by_id if e not in traffic.acked]
    assert len(unacked) <= STREAMS, f"{len(unacked)} unacknowledged events logged: {unacked[:10]}"

    # (3) the final checkpoint learned each logged (learnable) event exactly once, up to the last
    checkpoint = _checkpoint(h)
    learnable = [line for line in lines if not line.get("_skipLearn")]
    assert checkpoint["args"] == _learner_settings().vw_args()
    assert checkpoint["learned"] == len(learnable), (
        f"checkpoint learned {checkpoint['learned']} examples; the log holds {len(learnable)} joined events")
    assert checkpoint["offset"] == stream_ids[-1], (
        f"checkpoint offset {checkpoint['offset']} != last logged stream id {stream_ids[-1]}")

    # (4) the service's model is the model the log trains, event by event, in log order
    settings = _learner_settings()
    served = Learner(settings, checkpoint["blob"], checkpoint["learned"])
    fresh = Learner(settings)
    try:
        for line in learnable:
            _learn_logged(fresh, line)
        nonzero, differ, worst = _weight_diffs(served, fresh)
    finally:
        served.close()
        fresh.close()
    assert nonzero > 0, "the model learned nothing"
    assert differ == 0, (f"the checkpointed model differs from one trained on the log: {differ} weights "
                         f"differ, max |diff| {worst:.3g} ({nonzero} nonzero weights)")
    return lines, checkpoint


# --------------------------------------------------------------------------- tests
@pytest.mark.timeout(180)
async def test_acknowledged_rewards_survive_kill9_exactly_once(harness: Harness) -> None:
    h = harness
    started = time.monotonic()
    traffic = Traffic()
    kill_after = KILL_AFTER + random.randrange(CHECKPOINT_EVERY_EVENTS)

    # 1. traffic, and a SIGKILL while it flows
    service = await h.start()
    stop = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        streams = [asyncio.create_task(_stream(session, service.base, traffic, f"s{s}-", stop))
                   for s in range(STREAMS)]
        deadline = time.monotonic() + 30
        while len(traffic.acked) < kill_after:
            done = [t for t in streams if t.done()]
            if done:                      # a stream failed while the service was up
                await done[0]
                raise AssertionError(f"a client stream ended early\n{service.log_tail()}")
            assert time.monotonic() < deadline, f"only {len(traffic.acked)} rewards in 30 s\n{service.log_tail()}"
            await asyncio.sleep(0.002)
        traffic.killed = True
        await h.kill9(service)
        acked_at_kill = len(traffic.acked)
        stop.set()
        await asyncio.gather(*streams)
    assert not traffic.unexpected, traffic.unexpected[:10]

    # what the crash left: the last checkpoint lags what was joined (and learned)
    r = h.redis()
    at_crash = _checkpoint(h) if r.exists(h.keys.model) else {"learned": 0, "offset": "0-0", "version": 0}
    joined_at_crash = int(r.hget(h.keys.stats, "events_joined") or 0)

    # 2. restart on the same data and Redis; more traffic, all of it acknowledged
    service = await h.start()
    restarted = time.monotonic()
    await _complete(service.base, traffic)
    assert not traffic.unexpected, traffic.unexpected[:10]
    before = len(traffic.acked)
    await _run_pairs(service.base, traffic, "after-", streams=4, pairs=10)
    assert not traffic.unexpected, traffic.unexpected[:10]
    assert len(traffic.acked) == before + 40, "a reward after the restart was not acknowledged"

    # 3. let it learn and log everything, then a clean stop
    stats = await _wait_settled(h, service)
    await h.terminate(service)

    # 4. exactly once
    lines, checkpoint = check_exactly_once(h, traffic)
    assert stats["model"]["examples_learned"] == stats["counters"]["events_joined"] == len(lines), (
        f"/v1/stats before the stop: learned {stats['model']['examples_learned']}, joined "
        f"{stats['counters']['events_joined']}; {len(lines)} logged")
    print(f"\n[{h.variant}] {acked_at_kill} rewards acknowledged at the kill "
          f"(events joined {joined_at_crash}, checkpoint {at_crash['version']} held {at_crash['learned']}: "
          f"{joined_at_crash - at_crash['learned']} to relearn); {len(traffic.acked)} acknowledged in all, "
          f"{len(lines)} logged, final checkpoint {checkpoint['version']} learned {checkpoint['learned']}; "
          f"{time.monotonic() - started:.1f}s ({time.monotonic() - restarted:.1f}s after the restart)")


@pytest.mark.timeout(120)
async def test_clean_restart_relearns_nothing(harness: Harness) -> None:
    h = harness
    traffic = Traffic()

    # 100 events: not a multiple of the checkpoint interval, so the final checkpoint matters
    service = await h.start()
    await _run_pairs(service.base, traffic, "one-", streams=4, pairs=25)
    assert not traffic.unexpected and len(traffic.acked) == 100, traffic.unexpected[:10]
    await _wait_settled(h, service)
    await h.terminate(service)
    lines, first = check_exactly_once(h, traffic)
    assert first["learned"] == len(lines) == 100

    # restart: nothing to relearn, no new checkpoint, no line rewritten
    service = await h.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for _ in range(15):           # 1.5 s: several learner and log read cycles
            stats = await _stats(session, service.base)
            assert stats["model"]["examples_learned"] == first["learned"], stats
            assert stats["model"]["checkpoint_version"] == first["version"], stats
            assert stats["counters"]["events_joined"] == 100, stats
            await asyncio.sleep(0.1)
    assert read_lines(h.data_dir / "decisions") == lines, "the log changed on a restart without new events"

    # and it goes on learning from exactly where it stopped
    await _run_pairs(service.base, traffic, "two-", streams=2, pairs=5)
    assert not traffic.unexpected and len(traffic.acked) == 110, traffic.unexpected[:10]
    await _wait_settled(h, service)
    await h.terminate(service)
    lines_after, last = check_exactly_once(h, traffic)
    assert lines_after[:100] == lines
    assert last["learned"] == first["learned"] + 10 == 110
    assert last["version"] == first["version"] + 1
