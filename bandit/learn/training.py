"""Online learning from the joined-event stream, with checkpoints that make a crash
lose nothing and learn nothing twice.

A checkpoint stores the model together with the id of the last stream entry learned
into it. On start the learner loads the newest checkpoint and rewinds its consumer
group to that id, so exactly the entries the checkpoint lacks are learned again; the
stream is never trimmed past what the newest checkpoint holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import orjson

from bandit.config import Settings
from bandit.decide.decider import ModelHolder
from bandit.store.keys import LEARNER_GROUP
from bandit.learn.pacing import Pace
from bandit.decide.record import DecisionRecord, read_record
from bandit.learn.records import action_lines
from bandit.observe.ratelog import CauseLog
from bandit.store.store import Checkpoint, JoinedEvent, Store, stream_id_key
from policies.learner import Learner
from policies.vwtext import shared_line

log = logging.getLogger("nextbest.learner")

BATCH = 64   # events read from the stream at once


def learn_event(learner: Learner, event: JoinedEvent) -> None:
    """Every slot with its own reward; a one-slot event's reward is the event's."""
    record: DecisionRecord = event.record
    rewards = event.slot_rewards if len(event.slot_rewards) == len(record.slots) else (event.reward,)
    learner.learn_slots(shared_line(record.shared), action_lines(record.actions),
                        [(slot.chosen, slot.probability, reward) for slot, reward in zip(record.slots, rewards)])


class Trainer:
    def __init__(self, settings: Settings, store: Store, model: ModelHolder, consumer: str) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.consumer = consumer
        self.offset = "0-0"
        self.since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._stopping = asyncio.Event()
        self.pace = Pace(settings.background_max_lag_seconds)
        self.failure: str | None = None   # the last checkpoint copy that could not be written
        self._errors = CauseLog(log)

    async def prepare(self) -> None:
        """Take up the newest checkpoint (another process may have written it) and
        rewind the stream to what it lacks."""
        checkpoint = await self.store.load_checkpoint()
        held = (self.model.version, self.model.learner.learned)
        if checkpoint is None:
            if held != (0, 0):
                self.model.replace(Learner(self.settings.learner), 0)
            self.offset = "0-0"
        else:
            if held != (checkpoint.version, checkpoint.learned):
                self.model.replace(Learner(self.settings.learner, checkpoint.blob, checkpoint.learned),
                                   checkpoint.version)
            self.offset = checkpoint.offset
        await self.store.rewind_group(LEARNER_GROUP, self.offset)
        log.info("learner ready at checkpoint %s (offset %s, %d examples)",
                 self.model.version, self.offset, self.model.learner.learned)

    async def run(self) -> None:
        while not self._stopping.is_set():
            events = await self.store.read_group(LEARNER_GROUP, self.consumer, BATCH, block_ms=200,
                                                 decode=read_record)
            if events:
                skipped = 0
                async for event in self.pace.each(events):   # when requests leave the loop idle
                    skipped += self.learn([event])
                await self.store.ack(LEARNER_GROUP, [e.stream_id for e in events])
                if skipped:
                    await self.store.incr("events_unlearnable", skipped)
            if self._checkpoint_due():
                await self.checkpoint()

    def learn(self, events: list[JoinedEvent]) -> int:
        """Learn a batch in stream order; returns how many malformed entries were skipped."""
        learner = self.model.learner
        skipped = 0
        for event in events:
            if event.learnable:
                try:
                    learn_event(learner, event)
                except (KeyError, IndexError, TypeError, ValueError, RuntimeError):
                    # A malformed entry must not stall learning forever: skip it, loudly.
                    log.exception("cannot learn joined event %s (stream id %s); skipped",
                                  event.event_id, event.stream_id,
                                  extra={"event_id": event.event_id, "stream_id": event.stream_id})
                    skipped += 1
            self.offset = event.stream_id
            self.since_checkpoint += 1
        return skipped

    def _checkpoint_due(self) -> bool:
        if self.since_checkpoint == 0:
            return False
        return (self.since_checkpoint >= self.settings.checkpoint_every_events
                or time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_every_seconds)

    async def checkpoint(self) -> Checkpoint:
        learner = self.model.learner
        checkpoint = Checkpoint(
            blob=learner.to_bytes(), version=self.model.version + 1, offset=self.offset,
            learned=learner.learned, saved_ms=int(time.time() * 1000), args=self.settings.learner.vw_args(),
            settings=self.settings.decision_settings(),
        )
        await self.store.save_checkpoint(checkpoint)
        self.model.version = checkpoint.version
        self.since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        try:   # the model is safe in Redis; the copy on disk is for operators (worker.py checks the dir)
            await asyncio.to_thread(write_checkpoint_file, self.settings.model_dir, checkpoint,
                                    self.settings.keep_checkpoints)
        except OSError as exc:
            self.failure = f"cannot write checkpoint copies to {self.settings.model_dir}: {exc.strerror or exc}"
            self._errors.failed("copy", "learner: %s", self.failure)
        else:
            if self.failure is not None:
                self._errors.recovered("copy", f"checkpoint copies in {self.settings.model_dir}")
                self.failure = None
        await self.trim()
        return checkpoint

    async def trim(self) -> None:
        # every reader of the stream must be past an entry before it goes: the log, the analytics
        log_offset = await self.store.log_offset() or "0-0"
        analytics_offset = await self.store.analytics_offset() or "0-0"
        oldest_needed = min(self.offset, log_offset, analytics_offset, key=stream_id_key)
        if oldest_needed != "0-0":
            await self.store.trim_stream(oldest_needed)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        """Let the loop finish its batch; the caller then takes the final checkpoint."""
        self._stopping.set()


def write_checkpoint_file(model_dir: Path, checkpoint: Checkpoint, keep: int) -> None:
    """A copy of each checkpoint on disk, for operators and for exporting the model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    stem = model_dir / f"model-{checkpoint.version:08d}"
    meta = {"version": checkpoint.version, "offset": checkpoint.offset, "learned": checkpoint.learned,
            "saved_ms": checkpoint.saved_ms, "args": checkpoint.args, "settings": dict(checkpoint.settings)}
    for suffix, data in ((".vw", checkpoint.blob), (".json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))):
        tmp = stem.with_suffix(suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(stem.with_suffix(suffix))
    models = sorted(model_dir.glob("model-*.vw"))
    for old in models[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
