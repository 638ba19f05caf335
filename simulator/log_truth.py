"""The true value of a policy on a simulator log, from the simulator's hidden world.

A simulation's events are named ``sim-<seed>-<contact>``; with the run's seed, number of
subscribers and number of contacts the world (``simulator.world``) is regenerated, and
each logged event's true expected reward of every candidate offer is known:
P(accept | subscriber, contact, offer) (``simulator.truth``) × the offer's value as the
service logged it (``_nb.values``; the service's reward for an acceptance with
``reward_objective: value``). The true value of a target policy on the log is then

    V = (1/n) Σ_i Σ_a π_i(a) · E[r | x_i, a],

with π_i the *same per-event target probabilities replay scores* (``evaluate(...,
keep_targets=True)`` keeps them): what the estimators estimate, so an interval can be
checked against it. Single-slot logs (one offer per decision) only: a slate's value
under a target depends on the target's own earlier slots (``simulator.slate_truth``).

    from replay.evaluate import evaluate
    from simulator.log_truth import log_truth

    result = evaluate(logs, ["--epsilon 0.1"], keep_targets=True)
    truth = log_truth(logs, subscribers=2000, contacts=3000)
    print(truth.value(result.candidates[0].target), result.candidates[0].value)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replay.logs import LoggedEvent, read_logs
from simulator.truth import accept_probability
from simulator.world import Contact, SubscriberBase, generate_base, generate_contacts

__all__ = ["LogTruth", "TruthError", "log_truth", "match_world", "true_values"]

_EVENT = re.compile(r"^sim-(-?\d+)-(\d+)$")


class TruthError(ValueError):
    """The log is not a single-slot simulator log of this world (the message says why)."""


@dataclass(frozen=True)
class LogTruth:
    """``expected[i, a]``: the true expected reward of action a of the i-th scored event
    (replay's order: the log's good events, ``skip_learn`` ones left out), 0 past an
    event's actions; ``offers[i]`` its offer ids."""

    seed: int
    expected: np.ndarray
    offers: list[list[str]]

    def value(self, target: np.ndarray) -> float:
        """The true value of the target whose per-event PMFs are the rows of ``target``."""
        if target.shape != self.expected.shape:
            raise TruthError(f"target has shape {target.shape}, the log's events and actions are "
                             f"{self.expected.shape}: was it evaluated on this log?")
        return float((target * self.expected).sum(axis=1).mean())

    def offer_value(self, offer: str) -> float:
        """The true value of always serving ``offer``, on the events where it was a
        candidate (as replay's single offers are valued)."""
        values = [self.expected[i, ids.index(offer)] for i, ids in enumerate(self.offers) if offer in ids]
        if not values:
            raise TruthError(f"offer {offer!r} is not a candidate of any event")
        return float(np.mean(values))


def match_world(events: list[LoggedEvent], *, subscribers: int, contacts: int,
                seed: int | None = None) -> tuple[int, SubscriberBase, list[Contact]]:
    """The seed, the subscriber base and each event's contact of the simulator world the
    ``events`` came from (``seed`` read from the event ids when not given). ``TruthError``
    when an event is not a simulator event of that world or has no offer ids or values."""
    rows: list[tuple[int, str]] = []
    for event in events:
        match = _EVENT.match(event.event_id)
        if match is None:
            raise TruthError(f"event {event.event_id!r} is not a simulator event (sim-<seed>-<contact>)")
        found = int(match.group(1))
        if seed is None:
            seed = found
        elif found != seed:
            raise TruthError(f"event {event.event_id!r} is from seed {found}, not {seed}")
        values = event.extra.get("values")
        if event.action_ids is None or not isinstance(values, list) or len(values) != len(event.actions):
            raise TruthError(f"event {event.event_id!r} has no offer ids or values (_nb.offers, _nb.values)")
        rows.append((int(match.group(2)), str(event.extra.get("channel", ""))))
    if seed is None:
        raise TruthError("no events")
    base = generate_base(subscribers, seed)
    world = generate_contacts(base, contacts, seed)
    for index, channel in rows:
        if index >= len(world) or (channel and world[index].channel != channel):
            raise TruthError(f"event sim-{seed}-{index} does not fit a world of {subscribers:,} subscribers and "
                             f"{contacts:,} contacts (seed {seed}): give the run's --subscribers and --contacts")
    return seed, base, [world[index] for index, _ in rows]


def log_truth(source: str | Path, *, subscribers: int, contacts: int, seed: int | None = None) -> LogTruth:
    """The truth of the simulator log at ``source`` (any ``read_logs`` source), from a run
    with ``subscribers`` and ``contacts`` (``nextbest simulate --subscribers N --contacts
    M``); ``seed`` is read from the event ids when not given. ``TruthError`` when the
    log does not fit that world (another seed, size, or not a simulator log)."""
    events = []
    for chunk in read_logs(source):
        for event in chunk:
            if event.skip_learn:
                continue
            if event.slots is not None:
                raise TruthError(f"event {event.event_id!r} is multi-slot: the truth is for single-slot logs "
                                 "(simulator.slate_truth for slates)")
            events.append(event)
    if not events:
        raise TruthError(f"{source}: no events")
    seed, base, world = match_world(events, subscribers=subscribers, contacts=contacts, seed=seed)
    ids = [event.action_ids or [] for event in events]
    expected = np.zeros((len(events), max(len(i) for i in ids)))
    for i, (event, contact) in enumerate(zip(events, world)):
        values = [float(v) for v in event.extra["values"]]
        expected[i, :len(ids[i])] = [accept_probability(base, contact, o) * v for o, v in zip(ids[i], values)]
    return LogTruth(seed, expected, ids)


def true_values(result: object, truth: LogTruth) -> dict[str, float]:
    """The true value of every policy of an ``evaluate(..., keep_targets=True)`` result
    that kept its targets, by name; the single offers as ``best single offer (<id>)``
    and ``offer <id>``."""
    out = {}
    for policy in [*result.candidates, *result.baselines]:   # type: ignore[attr-defined]
        if policy.target is not None:
            out[policy.name] = truth.value(policy.target)
        elif policy.name.startswith("best single offer ("):
            out[policy.name] = truth.offer_value(policy.name[len("best single offer ("):-1])
    for offer in result.offers:   # type: ignore[attr-defined]
        out[f"offer {offer.offer}"] = truth.offer_value(offer.offer)
    return out
