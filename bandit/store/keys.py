"""Every Redis key nextbest uses, in one place. All share a configurable prefix so
several deployments can share one Redis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "nb"

    def event(self, event_id: str) -> str:
        """Hash: the pending (then joined) decision: record, state, rewards."""
        return f"{self.prefix}:ev:{event_id}"

    def reward_ids(self, event_id: str) -> str:
        """Set: client reward ids already counted for an event (either aggregation)."""
        return f"{self.prefix}:ev:{event_id}:rids"

    @property
    def deadlines(self) -> str:
        """Sorted set: pending event id → join deadline (ms since epoch, Redis clock)."""
        return f"{self.prefix}:deadlines"

    @property
    def joined(self) -> str:
        """Stream: joined events, in join order; the learner and the log consume it."""
        return f"{self.prefix}:joined"

    @property
    def stats(self) -> str:
        """Hash: counters (decisions, rewards by kind, learned, ...)."""
        return f"{self.prefix}:stats"

    @property
    def model(self) -> str:
        """Hash: the latest checkpoint: blob, version, stream offset, examples learned."""
        return f"{self.prefix}:model"

    @property
    def worker_lock(self) -> str:
        """String: the lease of the one process that learns and writes the log."""
        return f"{self.prefix}:worker:lock"

    @property
    def log_offset(self) -> str:
        """String: the last stream id written to the decision log (bounds stream trimming)."""
        return f"{self.prefix}:log:offset"

    @property
    def catalog(self) -> str:
        """Hash: offer id → offer spec (JSON)."""
        return f"{self.prefix}:catalog"

    @property
    def catalog_version(self) -> str:
        """String: incremented with every catalog change; decisions record it."""
        return f"{self.prefix}:catalog:version"

    @property
    def catalog_reasons(self) -> str:
        """String: the catalog file's call reasons (JSON, code → {language: label}), for the
        agent desktop's list; written from the file at every start that has ``reasons:``."""
        return f"{self.prefix}:catalog:reasons"

    @property
    def catalog_decline_reasons(self) -> str:
        """String: the catalog file's decline reasons (JSON, code → {language: label}), the
        desktop's optional "why not" of a Decline; written like ``catalog_reasons``."""
        return f"{self.prefix}:catalog:decline_reasons"

    def profile(self, subscriber: str) -> str:
        """String: a subscriber's profile (JSON), keyed by the subscriber id's keyed hash."""
        return f"{self.prefix}:profile:{subscriber}"

    def accepted(self, subscriber: str) -> str:
        """String: the catalog offers a subscriber accepted (ids separated by spaces),
        appended by the reward script and read with the profile, so the next decision
        knows them as owned services whatever the profile feed says yet."""
        return f"{self.prefix}:accepted:{subscriber}"

    def cap(self, offer_id: str, kind: str, period: str) -> str:
        """String counter: an offer's impressions (imp), acceptances (acc) or acceptance
        reservations of decisions in flight (res), per UTC day (YYYYMMDD) or in total."""
        return f"{self.prefix}:cap:{offer_id}:{kind}:{period}"

    def shown_today(self, subscriber: str, day: str) -> str:
        """String counter: offers shown to a subscriber (keyed hash) on a UTC day."""
        return f"{self.prefix}:sub:{subscriber}:day:{day}"

    def shown_week(self, subscriber: str, offer_id: str, week: str) -> str:
        """String counter: times one offer was shown to a subscriber in an ISO week."""
        return f"{self.prefix}:sub:{subscriber}:shown:{offer_id}:{week}"

    def declined(self, subscriber: str, offer_id: str) -> str:
        """String with a TTL: the subscriber declined the offer within its cooldown."""
        return f"{self.prefix}:sub:{subscriber}:declined:{offer_id}"

    @property
    def secret(self) -> str:
        """String: the generated HMAC key for subscriber ids, shared by all processes."""
        return f"{self.prefix}:secret"

    def agg_bucket(self, resolution: str, bucket: int) -> str:
        """Hash: analytics counters of the decisions made in one minute ("m", epoch
        minutes) or hour ("h", epoch hours): ``<metric>|<channel>|<offer>|<policy>``."""
        return f"{self.prefix}:agg:{resolution}:{bucket}"

    @property
    def agg_offset(self) -> str:
        """String: the newest stream id the analytics counters include."""
        return f"{self.prefix}:agg:offset"

    def ui_session(self, digest: str) -> str:
        """Hash with a TTL: a browser session (by the SHA-256 of its cookie): scopes, CSRF token."""
        return f"{self.prefix}:ui:session:{digest}"

    def ui_contacts(self, subscriber: str) -> str:
        """List with a TTL, newest first, capped: the agent desktop's recent contacts of a
        subscriber (keyed hash)."""
        return f"{self.prefix}:ui:contacts:{subscriber}"


LEARNER_GROUP = "learner"
LOG_GROUP = "log"
ANALYTICS_GROUP = "analytics"
