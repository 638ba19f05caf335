"""The decision log under write failures: it stops and stays behind, never skips.

Writes fail with a real OS error: ``RLIMIT_FSIZE`` caps the size of files this process
may write, so the kernel accepts part of a write (a torn line, as a full disk leaves)
and then refuses the rest with EFBIG, until the cap is lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal

import orjson
import redis
import redis.asyncio as aioredis

from bandit.decide.record import read_record
from bandit.learn.decision_log import DecisionLog, log_files
from bandit.learn.worker import _supervised
from bandit.store.keys import LEARNER_GROUP, LOG_GROUP, Keys
from bandit.store.store import Store
from tests.harness import wait_until, joined_entries, read_lines

RECORD = orjson.dumps({"id": "x", "ts": 0, "channel": "web", "sid": None, "shared": {"Context": {"a=1": 1}},
                       "offers": ["o"], "actions": [{"id=o": 1}], "chosen": 0, "pmf": [1.0], "model": "0.0",
                       "k": 1, "defer": False})


async def _join(store: Store, names: list[str]) -> None:
    for name in names:
        await store.create_decision(name, RECORD, 60_000, False)
        assert (await store.post_reward(name, 1.0, "first", None))[0] == "joined"


@contextlib.contextmanager
def file_size_cap(size: int):
    """Files this process writes cannot grow past ``size`` bytes (EFBIG beyond)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the error, not the signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


async def test_failed_writes_are_retried_in_order_and_nothing_is_skipped(make_settings, redis_url, caplog):
    settings = make_settings()
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(settings.key_prefix))
    writer = DecisionLog(settings, store, "writer-1")
    await writer.prepare()
    task = asyncio.create_task(writer.run())
    try:
        await _join(store, [f"a{i}" for i in range(10)])
        await wait_until(lambda: _logged(settings, 10), 10, "the first 10 lines")

        async def committed() -> bool:   # the lines reach the disk before their commit reaches Redis
            return await store.log_offset() == writer.offset
        await wait_until(committed, 10, "the first 10 lines' commit")
        [current] = log_files(settings.log_dir)
        written = current.stat().st_size
        offset_before = await store.log_offset()

        with file_size_cap(written + 200):   # the next line is ~500 bytes: a torn one
            await _join(store, [f"b{i}" for i in range(20)])
            await wait_until(lambda: _async(writer.failures >= 3), 10, "three failed writes")
            assert writer.failure and "File too large" in writer.failure
            assert await store.log_offset() == offset_before   # nothing past what is on disk
            assert current.stat().st_size <= written + 200
            await _join(store, [f"c{i}" for i in range(5)])  # new entries wait behind the failed batch
            await asyncio.sleep(0.5)
            assert [line["EventId"] for line in read_lines(settings.log_dir)] == [f"a{i}" for i in range(10)]
            await _trim_as_a_checkpoint_would(store, settings)   # the learner is ahead: the log holds the stream
            unlogged = [e.event_id for e in await joined_entries(store, offset_before)]
            assert unlogged == [f"b{i}" for i in range(20)] + [f"c{i}" for i in range(5)]

        names = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(20)] + [f"c{i}" for i in range(5)]
        await wait_until(lambda: _logged(settings, len(names)), 15, "every line after the cap is lifted")
        await asyncio.sleep(0.3)
        lines = read_lines(settings.log_dir)
        assert [line["EventId"] for line in lines] == names          # each once, in order
        stream = [e.stream_id for e in await joined_entries(store)]
        assert [line["_nb"]["stream_id"] for line in lines] == stream
        assert await store.log_offset() == stream[-1]
        assert writer.healthy and writer.failure is None
        groups = {g["name"].decode(): g for g in await client.xinfo_groups(store.keys.joined)}
        assert groups[LOG_GROUP]["pending"] == 0
        assert (await store.stats())["events_logged"] == len(names)
        errors = [r for r in caplog.records if r.name == "nextbest.log" and r.levelno >= logging.ERROR]
        assert 1 <= len(errors) < writer_attempts_bound(), [r.getMessage() for r in errors]
        assert not any(r.exc_info for r in errors)
        assert any("works again" in r.getMessage() for r in caplog.records)
    finally:
        await writer.stop()
        await asyncio.wait_for(task, 5)
        writer.close_file()
        await client.aclose()


async def _trim_as_a_checkpoint_would(store: Store, settings) -> None:
    """A learner and analytics that are at the end of the stream, trimming after a checkpoint."""
    from bandit.decide.decider import ModelHolder
    from bandit.learn.training import Trainer
    from policies.learner import Learner

    last = (await joined_entries(store))[-1].stream_id
    await store.redis.set(store.keys.agg_offset, last)
    trainer = Trainer(settings, store, ModelHolder(Learner(settings.learner), 0), "learner")
    trainer.offset = last
    await trainer.trim()


def writer_attempts_bound() -> int:
    """Failures are logged once per state change (plus a count every 30 s), not per attempt."""
    return 3


async def test_a_torn_or_unreadable_tail_is_cut_at_start_with_a_warning(make_settings, redis_url, caplog):
    settings = make_settings()
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(settings.key_prefix))
    await _join(store, [f"e{i}" for i in range(4)])
    first = DecisionLog(settings, store, "writer-1")
    await first.prepare()
    events = await store.read_group("log", "writer-1", 2, block_ms=10, decode=read_record)
    assert await first.write(events)
    first.close_file()
    [current] = log_files(settings.log_dir)
    good = current.stat().st_size
    tail = b'{"_label_cost": -1.0, "Event\n{"_nb": {"stream_id": "9'
    with open(current, "ab") as fh:   # a whole line of garbage (two torn writes), then a torn line
        fh.write(tail)
    await client.delete(store.keys.log_offset)   # only the disk knows where the log is

    caplog.set_level(logging.WARNING, "nextbest.log")
    second = DecisionLog(settings, store, "writer-2")
    await second.prepare()
    assert second.offset == events[-1].stream_id and current.stat().st_size == good
    [warning] = [r.getMessage() for r in caplog.records if "torn tail" in r.getMessage()]
    assert str(current) in warning and f"at byte {good}" in warning and f"({len(tail)} bytes)" in warning
    rest = await store.read_group("log", "writer-2", 10, block_ms=10, decode=read_record)
    assert await second.write(rest)
    second.close_file()
    assert [line["EventId"] for line in read_lines(settings.log_dir)] == [f"e{i}" for i in range(4)]
    await client.aclose()


async def _async(value):
    return value


async def _logged(settings, count: int) -> bool:
    try:
        return len(read_lines(settings.log_dir)) >= count
    except (OSError, orjson.JSONDecodeError):
        return False


async def test_events_logged_moves_with_the_offset_even_across_a_crash(make_settings, redis_url):
    """The offset, the counter and the acks are one step; lines a crash left on disk
    before that step are counted by the next writer; a repeated commit counts nothing."""
    settings = make_settings()
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(settings.key_prefix))
    await _join(store, [f"e{i}" for i in range(6)])
    first = DecisionLog(settings, store, "writer-1")
    await first.prepare()
    events = await store.read_group("log", "writer-1", 2, block_ms=10, decode=read_record)
    assert await first.write(events)
    assert (await store.stats())["events_logged"] == 2
    assert not await store.commit_log(LOG_GROUP, events[-1].stream_id, 2)   # a retried commit
    more = await store.read_group("log", "writer-1", 3, block_ms=10, decode=read_record)
    from bandit.learn.decision_log import _line
    first._append(b"".join(_line(e, False) for e in more))   # fsynced, then the process dies
    first.close_file()
    assert (await store.stats())["events_logged"] == 2

    second = DecisionLog(settings, store, "writer-2")
    await second.prepare()
    assert second.offset == more[-1].stream_id == await store.log_offset()
    assert (await store.stats())["events_logged"] == 5
    rest = await store.read_group("log", "writer-2", 10, block_ms=10, decode=read_record)
    assert [e.event_id for e in rest] == ["e5"]
    assert await second.write(rest)
    second.close_file()
    assert [line["EventId"] for line in read_lines(settings.log_dir)] == [f"e{i}" for i in range(6)]
    assert (await store.stats())["events_logged"] == 6
    await client.aclose()


async def test_a_refused_resume_is_retried_before_the_log_writes_again(make_settings, own_redis, caplog):
    """The fault suite's finding: Redis refused writes (OOM) while the writer resumed after a
    crash, the half-done resume let it write on, and ``events_logged`` stayed behind the lines
    on disk for good. Now a duty runs again only after a whole ``prepare``."""
    client = aioredis.Redis.from_url(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        settings = make_settings(redis_url=own_redis.url)
        store = Store(client, Keys(settings.key_prefix))
        writer = DecisionLog(settings, store, "writer-1")
        await writer.prepare()
        await _join(store, [f"e{i}" for i in range(6)])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")   # every write that may grow memory is refused: OOM
        task = asyncio.create_task(_supervised(writer))
        try:
            # the six lines reach the disk, their commit is refused, then resumes are refused
            await wait_until(lambda: _logged(settings, 6), 10, "six lines on disk")
            await asyncio.sleep(2.5)
            assert (await store.stats()).get("events_logged", 0) == 0
            admin.config_set("maxmemory", "0")

            async def counted() -> bool:
                return (await store.stats()).get("events_logged", 0) == 6
            await wait_until(counted, 10, "events_logged equal to the lines on disk")
            assert await store.log_offset() == writer.offset
        finally:
            await writer.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            writer.close_file()
        assert [line["EventId"] for line in read_lines(settings.log_dir)] == [f"e{i}" for i in range(6)]
        # one line for the outage and one for the recovery, whatever the number of refused resumes
        again = [r.getMessage() for r in caplog.records if "DecisionLog works again" in r.getMessage()]
        assert len(again) == 1 and int(again[0].split(" after ")[1].split()[0]) >= 2, again
    finally:
        await client.aclose()
        admin.close()


async def test_a_refused_learner_resume_is_retried_before_it_learns_again(make_settings, own_redis, caplog):
    """The learner half. While Redis refuses writes (OOM) a checkpoint fails, so the duty
    stops; its resume takes up the checkpoint (the model goes back to it) and then cannot
    rewind the consumer group (``XGROUP CREATE`` is refused). Memory comes back at the worst
    moment, right after that refused resume: a supervisor that ran the duty then (before
    session 7's fix) read on from the unrewound group, the entries since the checkpoint never
    came again, and its next checkpoint held fewer events than were joined, for good. Now
    the resume is retried whole: the group is rewound to the checkpoint and every joined
    event is in the model exactly once."""
    from bandit.decide.decider import ModelHolder
    from bandit.learn.training import Trainer
    from policies.learner import Learner

    client = aioredis.Redis.from_url(own_redis.url)
    admin = aioredis.Redis.from_url(own_redis.url)
    refused: list[BaseException] = []

    class MemoryBackAfterARefusedResume(Trainer):
        """A real Trainer; only the moment memory is lifted is chosen by the test."""

        async def prepare(self) -> None:
            try:
                await super().prepare()
            except redis.exceptions.RedisError as exc:
                if not refused:
                    await admin.config_set("maxmemory", "0")
                refused.append(exc)
                raise

    try:
        settings = make_settings(redis_url=own_redis.url, checkpoint_every_events=4)
        store = Store(client, Keys(settings.key_prefix))
        model = ModelHolder(Learner(settings.learner), 0)
        await _join(store, [f"a{i}" for i in range(4)])
        first = Trainer(settings, store, model, "learner-1")
        await first.prepare()
        task = asyncio.create_task(_supervised(first))

        async def checkpointed(learned: int):
            meta = await store.checkpoint_meta()
            return meta if int(meta.get("learned", -1)) == learned else None
        try:
            checkpoint = await wait_until(lambda: checkpointed(4), 15, "the checkpoint of the first four events")
        finally:
            await first.stop()
            await asyncio.wait_for(task, 10)
        assert checkpoint["version"] == "1" and checkpoint["offset"] == (await joined_entries(store))[-1].stream_id

        # the next leader resumes at that checkpoint; four more events wait for it in the stream
        trainer = MemoryBackAfterARefusedResume(settings, store, model, "learner-2")
        await trainer.prepare()
        await _join(store, [f"b{i}" for i in range(4)])
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")   # the checkpoint after b0..b3 is refused: OOM
        task = asyncio.create_task(_supervised(trainer))
        try:
            await wait_until(lambda: _async(bool(refused)), 15, "a refused resume")
            assert isinstance(refused[0], redis.exceptions.OutOfMemoryError), refused   # XGROUP CREATE
            joined = await joined_entries(store)
            assert len(joined) == 8 == (await store.stats())["events_joined"]
            final = await wait_until(lambda: checkpointed(8), 20, "a checkpoint that holds every joined event")
            assert final["offset"] == joined[-1].stream_id
            await asyncio.sleep(0.5)   # a second learning of b0..b3 would come now
            assert model.learner.learned == 8 and trainer.offset == joined[-1].stream_id
            assert int((await store.checkpoint_meta())["learned"]) == 8
            group = {g["name"].decode(): g for g in await client.xinfo_groups(store.keys.joined)}[LEARNER_GROUP]
            assert group["pending"] == 0 and group["last-delivered-id"].decode() == joined[-1].stream_id
        finally:
            await trainer.stop()
            await asyncio.wait_for(task, 10)
        again = [r.getMessage() for r in caplog.records if f"{type(trainer).__name__} works again" in r.getMessage()]
        assert len(again) == 1, again
    finally:
        await client.aclose()
        await admin.aclose()


async def test_a_batch_that_fails_after_whole_lines_is_cut_back_whole(make_settings, redis_url, caplog):
    """The fault suite's finding (full_disk): a disk that fills mid-batch keeps the batch's
    first lines whole and tears the next; cutting only the torn line left lines past the
    offset, and the retry stopped with "the log on disk is past its offset" (the leader let
    go). Now the whole failed batch is cut and written again, each line once."""
    settings = make_settings()
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(settings.key_prefix))
    try:
        names = [f"e{i}" for i in range(8)]
        await _join(store, names)
        writer = DecisionLog(settings, store, "writer-1")
        await writer.prepare()
        first = await store.read_group("log", "writer-1", 2, block_ms=10, decode=read_record)
        assert await writer.write(first)
        [current] = log_files(settings.log_dir)
        written = current.stat().st_size
        line = written // 2
        batch = await store.read_group("log", "writer-1", 10, block_ms=10, decode=read_record)
        with file_size_cap(written + 2 * line + line // 2):   # two whole lines, then a torn one
            assert not await writer.write(batch)
        assert current.stat().st_size == written and writer.offset == first[-1].stream_id
        assert any("cut the" in r.getMessage() and f"at byte {written}" in r.getMessage() for r in caplog.records)
        again = await store.read_group("log", "writer-1", 10, block_ms=None, decode=read_record, start="0")
        assert [e.event_id for e in again] == names[2:]
        assert await writer.write(again)
        writer.close_file()
        assert [line["EventId"] for line in read_lines(settings.log_dir)] == names
        assert (await store.stats())["events_logged"] == len(names)
    finally:
        await client.aclose()
