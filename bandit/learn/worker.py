"""Background duties of a nextbest process.

Every process expires overdue decisions (the join script makes that safe to race).
Exactly one process per deployment — the holder of a lease in Redis — learns from the
joined stream and writes the decision log; the others reload the model whenever that
one publishes a newer checkpoint. A lease left by a crashed process on this host is
taken over at once; elsewhere it expires after a few seconds.

A leader that cannot do its duties must not keep the lease: a process whose data dir is
not writable (or whose log writer keeps failing) would otherwise hold back learning and
logging for the whole deployment while a healthy process stands by. So every renewal
first checks the duties' health; after ``lease_duty_failures`` failed checks in a row the
leader takes a final checkpoint (into Redis), releases the lease, reports not ready
(``problem``) and tries to lead again only after ``lease_backoff_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path

from redis.exceptions import RedisError

from bandit.observe.analytics import Analytics
from bandit.config import Settings
from bandit.decide.decider import ModelHolder
from bandit.learn.decision_log import DecisionLog
from bandit.store.eventloop import cancel_and_wait
from bandit.store.store import EXPIRE_BATCH, Store, worker_identity
from bandit.learn.training import Trainer
from bandit.observe.ratelog import CauseLog
from policies.learner import Learner

log = logging.getLogger("nextbest.worker")

LEASE_MS = 5000
RENEW_SECONDS = 1.0


class Worker:
    def __init__(self, settings: Settings, store: Store, model: ModelHolder, *, lead: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.lead = lead
        self.identity = worker_identity()
        self.trainer: Trainer | None = None
        self.decision_log: DecisionLog | None = None
        self.analytics: Analytics | None = None
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._duties: list[asyncio.Task] = []
        self.problem: str | None = None   # why this process let go of (or will not take) the lease
        self._duty_failures = 0
        self._retry_lead_at = 0.0          # time.monotonic() before which it does not try to lead
        self._errors = CauseLog(log)

    @property
    def leading(self) -> bool:
        return self.trainer is not None

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._expire_loop(), name="nextbest-expire"),
                       asyncio.create_task(self._lease_loop(), name="nextbest-lease")]

    async def stop(self) -> None:
        """Stop background work; the leader leaves a final checkpoint and a flushed log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)
        await self._step_down(final_checkpoint=True)

    async def _expire_loop(self) -> None:
        while True:
            try:
                while await self.store.expire_due(self.settings.default_reward) >= EXPIRE_BATCH:
                    pass   # each call is its own round trip: other clients' commands run in between
                self._errors.recovered("expire", "expiring overdue decisions")
            except (RedisError, OSError, asyncio.TimeoutError) as exc:  # Redis unavailable: next tick
                self._errors.failed("expire", "expiring overdue decisions failed: %s", exc)
            except Exception:
                log.exception("expiring overdue decisions failed")
            await asyncio.sleep(self.settings.reaper_interval_seconds)

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self._tend_lease()
                self._errors.recovered("lease", "lease upkeep")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                self._errors.failed("lease", "lease upkeep failed: %s", exc)
            except Exception:
                log.exception("lease upkeep failed")
            await asyncio.sleep(RENEW_SECONDS if self.lead else self.settings.model_poll_seconds)

    async def _tend_lease(self) -> None:
        if not self.lead or (not self.leading and time.monotonic() < self._retry_lead_at):
            await self._follow()
            return
        problem = await self._duty_problem()
        if problem is not None:
            self._duty_failures += 1
            if not self.leading or self._duty_failures >= self.settings.lease_duty_failures:
                await self._let_go(problem)
                await self._follow()
                return
            log.warning("the learner's duties fail (%d of %d checks before letting go): %s",
                        self._duty_failures, self.settings.lease_duty_failures, problem)
        else:
            self._duty_failures = 0
            if self.problem is not None:
                log.warning("the learner's duties can be done again (was: %s)", self.problem)
                self.problem = None
        holder = await self.store.take_lease(self.identity, LEASE_MS)
        if holder != self.identity and _dead_on_this_host(holder):
            if await self.store.steal_lease(holder, self.identity, LEASE_MS):
                log.warning("took over the learner lease from dead process %s", holder)
                holder = self.identity
        if holder == self.identity:
            if not self.leading:
                await self._take_up_duties()
        else:
            if self.leading:
                log.warning("lost the learner lease to %s; following", holder)
                await self._step_down(final_checkpoint=False)
            await self._follow()

    async def _duty_problem(self) -> str | None:
        """Why this process cannot learn and log right now, or None: the log writer's
        last write failed, or the checkpoint or log directory cannot be written."""
        if self.decision_log is not None and self.decision_log.failure is not None:
            return self.decision_log.failure
        return await asyncio.to_thread(probe_dirs, (self.settings.model_dir, self.settings.log_dir))

    async def _let_go(self, problem: str) -> None:
        self.problem = problem
        self._duty_failures = 0
        self._retry_lead_at = time.monotonic() + self.settings.lease_backoff_seconds
        if self.leading:
            log.error("releasing the learner lease: %s; trying to lead again in %.0f s", problem,
                      self.settings.lease_backoff_seconds)
            await self._step_down(final_checkpoint=True)
        else:
            log.error("not taking the learner lease: %s; trying again in %.0f s", problem,
                      self.settings.lease_backoff_seconds)

    async def _take_up_duties(self) -> None:
        trainer = Trainer(self.settings, self.store, self.model, self.identity)
        decision_log = DecisionLog(self.settings, self.store, self.identity)
        analytics = Analytics(self.store, self.identity, self.settings.background_max_lag_seconds)
        await trainer.prepare()
        await decision_log.prepare()
        await analytics.prepare()
        self.trainer, self.decision_log, self.analytics = trainer, decision_log, analytics
        self._duties = [asyncio.create_task(_supervised(trainer), name="nextbest-learn"),
                        asyncio.create_task(_supervised(decision_log), name="nextbest-log"),
                        asyncio.create_task(_supervised(analytics), name="nextbest-analytics")]
        self.ready.set()
        log.info("this process learns and writes the decision log (%s)", self.identity)

    async def _step_down(self, final_checkpoint: bool) -> None:
        trainer, decision_log = self.trainer, self.decision_log
        if trainer is None or decision_log is None:
            return
        await trainer.stop()
        await decision_log.stop()
        if self.analytics is not None:
            await self.analytics.stop()
        for task in self._duties:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._duties = []
        if final_checkpoint and trainer.since_checkpoint:
            await trainer.checkpoint()
        decision_log.close_file()
        self.trainer = self.decision_log = self.analytics = None
        await self.store.release_lease(self.identity)

    async def _follow(self) -> None:
        version = await self.store.checkpoint_version()
        if version > self.model.version:
            checkpoint = await self.store.load_checkpoint()
            if checkpoint is not None:
                learner = await asyncio.to_thread(Learner, self.settings.learner, checkpoint.blob,
                                                  checkpoint.learned)
                self.model.replace(learner, checkpoint.version)
                log.info("loaded model checkpoint %d", checkpoint.version)
        self.ready.set()


_DUTY_ERRORS = CauseLog(log)


async def _supervised(duty: Trainer | DecisionLog | Analytics) -> None:
    """Keep a duty going through Redis outages: log, wait, pick up from Redis again.

    A duty runs again only after ``prepare`` has succeeded whole: a half-done prepare (the
    checkpoint taken up but the stream not rewound, the offset read but the lines a crash left
    on disk not counted) would learn or count from a position nobody committed."""
    while True:
        try:
            await duty.run()
            return
        except asyncio.CancelledError:
            raise
        except (RedisError, asyncio.TimeoutError) as exc:   # an outage: no traceback each second
            _DUTY_ERRORS.failed(type(duty).__name__, "%s failed (%s); resuming in 1 s", type(duty).__name__, exc)
        except Exception:
            log.exception("%s failed; resuming in 1 s", type(duty).__name__)
        while True:
            await asyncio.sleep(1.0)
            if duty.stopping:
                return
            try:
                await duty.prepare()
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                _DUTY_ERRORS.failed(type(duty).__name__, "%s could not resume yet: %s", type(duty).__name__, exc)
            except Exception:
                log.exception("%s could not resume yet", type(duty).__name__)
            else:
                _DUTY_ERRORS.recovered(type(duty).__name__, type(duty).__name__)
                break


def probe_dirs(directories: tuple[Path, ...]) -> str | None:
    """Create, fsync and delete a small file in each directory: a real write, so a full
    disk, a read-only mount or a path that is not a directory all show."""
    for directory in directories:
        probe = directory / f".probe-{os.getpid()}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as fh:
                fh.write(b"nextbest")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
        except OSError as exc:
            return f"{directory} is not writable: {exc.strerror or exc}"
    return None


def _dead_on_this_host(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
