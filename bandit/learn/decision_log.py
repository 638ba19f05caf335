"""The decision log: every joined event as one line of VW's DSJSON, in rotated files.

Each line carries its stream id (``_nb.stream_id``). After a crash the writer drops a
torn last line, resumes after the newest id it finds on disk or in Redis, and so writes
every joined event exactly once; after a failed write (a full disk) it stops, cuts the
half-written tail and retries the same batch, never moving past it. See docs/log-format.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson

from bandit.config import Settings
from bandit.store.keys import LOG_GROUP
from bandit.learn.pacing import Pace
from bandit.decide.record import DecisionRecord, read_record
from bandit.learn.records import action_json
from bandit.observe.ratelog import CauseLog
from bandit.store.store import JoinedEvent, Store, stream_id_key
from policies.exploration import rank

log = logging.getLogger("nextbest.log")

SUFFIX = ".dsjson"


BATCH = 256   # entries read at once: parsing a large reply is one uninterrupted stretch


def dsjson_record(event: JoinedEvent, slates: bool = False) -> dict[str, Any]:
    """The event's DSJSON line: VW's contextual-bandit form when the deployment's model is
    ``--cb_explore_adf``, its conditional-bandit (CCB) form when it is ``--ccb_explore_adf``
    (``slates``), so that the log retrains the deployment's own model (log-format.md)."""
    record: DecisionRecord = event.record
    rewards = list(event.slot_rewards) if len(event.slot_rewards) == len(record.slots) else [event.reward]
    if slates:
        line = _ccb_line(event, record, rewards)
    else:
        if len(record.slots) != 1:
            raise ValueError(f"a {len(record.slots)}-slot event in a one-slot log")
        slot = record.slots[0]
        order = rank(slot.pmf, slot.chosen, len(slot.pmf))
        line = {
            "_label_cost": -event.reward if event.reward else 0.0,
            "_label_probability": slot.probability,
            "_label_Action": slot.chosen + 1,
            "_labelIndex": slot.chosen,
            "Timestamp": _iso(record.ts),
            "Version": "1",
            "EventId": event.event_id,
            "a": [i + 1 for i in order],
            "c": _context(record),
            "p": [slot.pmf[i] for i in order],
            "VWState": {"m": record.model},
        }
    if not event.learnable:
        line["_skipLearn"] = True
    line["_nb"] = {
        "stream_id": event.stream_id, "kind": event.kind, "reward": event.reward,
        "policy": record.policy, "catalog": record.catalog,
        "rewards": event.rewards_counted, "channel": record.channel, "subscriber": record.sid,
        "offers": record.offers, "values": record.values, "model": record.model,
        "deferred": record.defer, "decided_ms": record.ts, "joined_ms": event.joined_ms,
    }
    if slates:
        counts = event.slot_counts if len(event.slot_counts) == len(record.slots) else (event.rewards_counted,)
        line["_nb"]["slots"] = [{"slot": n, "offer": record.offers[slot.chosen], "reward": reward, "rewards": count}
                                for n, (slot, reward, count) in enumerate(zip(record.slots, rewards, counts), 1)]
    return line


def _context(record: DecisionRecord, slots: int = 0) -> dict[str, Any]:
    context: dict[str, Any] = {**record.shared, "_multi": [{"Offer": action_json(a)} for a in record.actions]}
    if slots:
        context["_slots"] = [{"_id": str(n)} for n in range(1, slots + 1)]
    return context


def _ccb_line(event: JoinedEvent, record: DecisionRecord, rewards: list[float]) -> dict[str, Any]:
    """VW's CCB DSJSON: per slot, the shown action first (0-based), then the others still
    free in that slot by probability, with their probabilities given the earlier slots."""
    outcomes = []
    shown: set[int] = set()
    for n, (slot, reward) in enumerate(zip(record.slots, rewards), 1):
        order = [i for i in rank(slot.pmf, slot.chosen, len(slot.pmf)) if i not in shown]
        shown.add(slot.chosen)
        outcomes.append({"_id": str(n), "_label_cost": -reward if reward else 0.0, "_a": order,
                         "_p": [slot.pmf[i] for i in order]})
    return {"Timestamp": _iso(record.ts), "Version": "1", "EventId": event.event_id,
            "c": _context(record, len(record.slots)), "_outcomes": outcomes, "VWState": {"m": record.model}}


def _line(event: JoinedEvent, slates: bool) -> bytes:
    try:
        return orjson.dumps(dsjson_record(event, slates)) + b"\n"
    except (KeyError, IndexError, TypeError, ValueError):
        log.exception("cannot log joined event %s (stream id %s); skipped", event.event_id, event.stream_id,
                      extra={"event_id": event.event_id, "stream_id": event.stream_id})
        return b""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DecisionLog:
    """Writes the ``log`` group's entries in stream order, each exactly once.

    Why it cannot skip: ``offset`` (and ``nb:log:offset``, which bounds the stream's
    trimming) only moves past entries that are on disk and fsynced; after a failed write
    (a full disk, an I/O error) the writer drops its file, cuts what the failed write left
    half-written, and reads its own unacknowledged entries again before any new one, so
    the failed batch is written before anything after it. Entries at or before
    ``offset`` (written, but their ack was lost) are acknowledged without writing again.
    """

    def __init__(self, settings: Settings, store: Store, consumer: str) -> None:
        self.settings = settings
        self.store = store
        self.consumer = consumer
        self.directory = settings.log_dir
        self.offset = "0-0"
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._dirty = False          # a write failed: repair the file before the next one
        self._failed_batch: tuple[Path, int] | None = None   # the file a failed write was appending to, and where
        self._redeliver = False      # a write failed: re-read this consumer's pending entries first
        self.failures = 0            # consecutive failed writes (0: healthy)
        self.failure: str | None = None   # the last write error, while failing
        self._errors = CauseLog(log)
        self._stopping = asyncio.Event()
        self.pace = Pace(settings.background_max_lag_seconds)

    async def prepare(self) -> None:
        self.close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        on_disk = await asyncio.to_thread(self._recover)
        self._dirty = False
        self._failed_batch = None   # whole lines a failed write left are adopted and counted below
        in_redis = await self.store.log_offset() or "0-0"
        offset = max(on_disk, in_redis, key=stream_id_key)
        if offset != in_redis:   # lines written, but the commit did not reach Redis (a crash)
            behind = await asyncio.to_thread(self._lines_after, in_redis)
            await self.store.commit_log(LOG_GROUP, offset, behind)
        await self.store.rewind_group(LOG_GROUP, offset)
        self.offset = offset   # only once Redis agrees: a failed prepare leaves the old position
        log.info("decision log resumes after stream id %s in %s", self.offset, self.directory)

    def _recover(self) -> str:
        """Redo an interrupted compression, cut a torn last line, return the last id on disk."""
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink()
        for packed in self.directory.glob(f"*{SUFFIX}.gz"):
            packed.with_suffix("").unlink(missing_ok=True)
        current = self._newest_plain()
        if self.settings.log_compress:   # closed files whose compression a crash interrupted
            for closed in self.directory.glob(f"decisions-*{SUFFIX}"):
                if closed != current:
                    compress(closed)
        if current is None:
            return "0-0"
        return _cut_torn_tail(current)

    def _lines_after(self, stream_id: str) -> int:
        """Lines of the newest file past ``stream_id``: written before a crash, not yet
        counted in events_logged (a commit covers at most one batch, in one file)."""
        current = self._newest_plain()
        if current is None:
            return 0
        after, count = stream_id_key(stream_id), 0
        for line in reversed(current.read_bytes().splitlines()):   # newest first: stop at the first counted
            if not line.strip():
                continue
            if stream_id_key(orjson.loads(line)["_nb"]["stream_id"]) <= after:
                break
            count += 1
        return count

    def _newest_plain(self) -> Path | None:
        files = sorted(self.directory.glob(f"decisions-*{SUFFIX}*"))
        if files and files[-1].suffix == SUFFIX:
            return files[-1]
        return None

    async def run(self) -> None:
        while not self._stopping.is_set():
            if self._redeliver:   # the batch a failed write left unacknowledged comes first
                events = await self.store.read_group(LOG_GROUP, self.consumer, BATCH, block_ms=None,
                                                     decode=read_record, start="0")
                if not events:
                    self._redeliver = False
                    continue
            else:
                events = await self.store.read_group(LOG_GROUP, self.consumer, BATCH, block_ms=200,
                                                     decode=read_record)
            if events:
                await self.write(events)

    async def write(self, events: list[JoinedEvent]) -> bool:
        """Append the entries after ``offset``, fsync, then move the offset and ack.
        Returns False when the write failed: nothing is acknowledged, the file is cut
        back to its last complete line, and the entries are read again (``run``)."""
        after = stream_id_key(self.offset)
        fresh = [e for e in events if stream_id_key(e.stream_id) > after]
        lines = 0
        if fresh:
            parts = []
            async for event in self.pace.each(fresh):   # when requests leave the loop idle
                parts.append(_line(event, self.settings.learner.slots))
            lines = sum(1 for part in parts if part)
            try:
                await asyncio.to_thread(self._append, b"".join(parts))
            except OSError as exc:
                await self._write_failed(exc)
                return False
            self.offset = fresh[-1].stream_id
            if self.failures:
                self._errors.recovered("write", f"the decision log in {self.directory}")
                self.failures, self.failure = 0, None
        # offset, events_logged and acks in one step (an unmoved offset counts nothing)
        await self.store.commit_log(LOG_GROUP, self.offset, lines, [e.stream_id for e in events])
        return True

    async def _write_failed(self, exc: OSError) -> None:
        self.failures += 1
        self.failure = f"cannot write {exc.filename or self._path or self.directory}: {exc.strerror or exc}"
        self._errors.failed("write", "decision log: %s; the batch after stream id %s is kept and retried",
                            self.failure, self.offset)
        self.close_file()
        self._dirty = True
        self._redeliver = True
        try:
            await asyncio.to_thread(self._repair)
        except OSError as again:
            self._errors.failed("repair", "decision log: cannot repair %s yet: %s", self.directory,
                                again.strerror or again)
        await asyncio.sleep(min(0.1 * 2 ** (self.failures - 1), 2.0))

    def _repair(self) -> None:
        """After a failed write: cut everything the failed batch left (a disk that fills
        mid-batch keeps its first lines whole and tears the next), finish interrupted
        compressions."""
        if self._failed_batch is not None:
            path, start = self._failed_batch
            size = path.stat().st_size
            if size > start:   # truncating needs no free space
                log.warning("decision log %s: cut the %d bytes a failed write left at byte %d; the batch is "
                            "written again", path, size - start, start)
                os.truncate(path, start)
            self._failed_batch = None
        on_disk = self._recover()
        if stream_id_key(on_disk) > stream_id_key(self.offset):   # cannot happen: a failed batch is cut whole
            raise RuntimeError(f"the log on disk ({on_disk}) is past its offset ({self.offset})")
        self._dirty = False

    def _append(self, payload: bytes) -> None:
        if self._dirty:
            self._repair()
        if self._file is None:
            self._rotate()
        if self._needs_rotation():   # also right after a restart appended to an old file
            self._rotate()
        assert self._file is not None and self._path is not None
        start = self._file.tell()
        view = memoryview(payload)
        try:
            while view:   # unbuffered: a failed write leaves nothing in a buffer to be written later
                written = self._file.write(view)
                view = view[written or 0:]
            os.fsync(self._file.fileno())
        except OSError:
            # the batch is retried whole: what it left (whole lines too, not only a torn
            # last one) is cut by _repair, or the retry would write those lines twice
            self._failed_batch = (self._path, start)
            raise

    def _needs_rotation(self) -> bool:
        assert self._file is not None and self._path is not None
        if self._file.tell() >= self.settings.log_rotate_bytes:
            return True
        day = datetime.fromtimestamp(self._path.stat().st_mtime, tz=timezone.utc).date()
        return self._file.tell() > 0 and day != datetime.now(timezone.utc).date()

    def _rotate(self) -> None:
        previous = self._path if self._file is not None else None
        self.close_file()
        current = None if previous else self._newest_plain()
        if current is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
            current = self.directory / f"decisions-{stamp}{SUFFIX}"
        self._path = current
        self._file = open(current, "ab", buffering=0)
        if previous is not None and self.settings.log_compress:
            compress(previous)

    def close_file(self) -> None:
        """Drop the file object (unbuffered: nothing is pending in it)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        self._stopping.set()


def _cut_torn_tail(path: Path) -> str:
    """Cut whatever follows the last complete, readable line (a write a crash or a full
    disk interrupted), with a warning naming the file, the byte offset and the length;
    return the stream id of the last line kept ("0-0" for none)."""
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        last_id = "0-0"
        while keep > 0:
            start = data.rfind(b"\n", 0, keep - 1) + 1
            line = data[start:keep].strip()
            if not line:
                keep = start
                continue
            try:
                last_id = orjson.loads(line)["_nb"]["stream_id"]
                break
            except (orjson.JSONDecodeError, KeyError, TypeError):
                keep = start   # a complete line that is not a log line: the tail of a torn write
        if keep != len(data):
            log.warning("decision log %s: cut a torn tail at byte %d (%d bytes)", path, keep, len(data) - keep)
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return last_id


def compress(path: Path) -> Path:
    """Gzip a closed log file: write aside, rename into place, then drop the original.
    Level 6 (the gzip tool's default): on DSJSON 1.5x the speed of gzip.open's level 9
    for 4 % more bytes; the service's core pays for it (bench/NOTES.md)."""
    packed = path.with_name(path.name + ".gz")
    tmp = packed.with_name(packed.name + ".tmp")
    with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    tmp.replace(packed)
    path.unlink()
    return packed


def log_files(directory: Path) -> list[Path]:
    """The log's files, oldest first (names sort by creation time)."""
    return sorted(p for p in directory.glob(f"decisions-*{SUFFIX}*") if not p.name.endswith(".tmp"))
