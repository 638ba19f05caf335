"""The true value of a slate policy on a multi-slot simulator log, from the hidden world.

``simulator.log_truth`` gives each event's true expected reward of every offer; on a
slate, slot s's expected reward for offer a is attention[s] · P(accept a) · value(a)
(``simulator.slate``: slots are heard with the channel's attention and accepted
independently). A slate policy's value on the log is then

    V = (1/n) Σ_i E_π[Σ_{s ≤ S_i} attention_i[s] · e_i(a_s)],

with S_i the slots the event was logged with (replay values those positions) and the
expectation over the target's own slates: slot s drawn given the target's earlier
slots, *not* the logged ones. That needs the target's PMF after every prefix, which
replay has only along the logged prefix for a learned candidate; so the truth is for
policies known at every prefix, the **ranked ε-policies**: each slot shows, with
probability 1 − ε, the remaining offer of the highest score (the first of equals), else
one of the remaining offers uniformly. ε = 1 is uniform random; ε = 0 with the offers'
values is replay's "priority by value", with their true expected values the oracle.
``RankedPolicy.target`` gives the same policy's per-(event, slot) PMFs given the
logged earlier slots, the rows ``replay.slate_estimates.SlateLog.estimates`` scores.

    truth = slate_truth(logs, subscribers=2000, contacts=3000)
    policy = RankedPolicy("oracle", truth.expected_rows(), epsilon=0.1)
    print(truth.value(policy), log.estimates(policy.target(log.mask, truth.rows), 0.05, "cs").slate["dr"])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replay.logs import read_logs
from replay.slate_passes import available, event_slots
from simulator.log_truth import TruthError, match_world
from simulator.truth import accept_probability
from simulator.world import attention

__all__ = ["RankedPolicy", "SlateTruth", "slate_truth"]


@dataclass(frozen=True)
class RankedPolicy:
    """Per slot: the best remaining offer by ``scores`` with probability 1 − ε, else a
    remaining one uniformly. ``scores[i]``: one per action of event i."""

    name: str
    scores: list[list[float]]
    epsilon: float = 0.0

    def pmf(self, scores: list[float], remaining: list[int]) -> list[float]:
        best = min(remaining, key=lambda a: (-scores[a], a))
        return [self.epsilon / len(remaining) + (1.0 - self.epsilon) * (a == best) for a in remaining]

    def target(self, mask: np.ndarray, rows: list[tuple[int, list[int]]]) -> np.ndarray:
        """m×A: the PMF of each logged (event, slot) row over its available actions (in
        action order, as ``SlateFacts``), given the logged earlier slots; ``rows`` from
        ``SlateTruth.rows``."""
        out = np.zeros(mask.shape)
        for j, (event, remaining) in enumerate(rows):
            out[j, : len(remaining)] = self.pmf(self.scores[event], remaining)
        return out


@dataclass(frozen=True)
class SlateTruth:
    """Per scored event (replay's order): ``expected[i][a]`` = P(accept) × value,
    ``attention[i]`` its logged slots' attention; ``rows`` per logged (event, slot): the
    event and the actions available there (not shown in an earlier logged slot)."""

    seed: int
    expected: list[list[float]]
    attention: list[list[float]]
    rows: list[tuple[int, list[int]]]

    def value(self, policy: RankedPolicy) -> float:
        """The policy's true expected slate value on these events (module docstring)."""
        return float(np.mean([self._event(policy, i) for i in range(len(self.expected))]))

    def _event(self, policy: RankedPolicy, i: int) -> float:
        expected, weights, scores = self.expected[i], self.attention[i], policy.scores[i]
        memo: dict[int, float] = {}

        def rest(shown: int, slot: int) -> float:   # expected value of slots slot.. given the offers shown
            if slot == len(weights):
                return 0.0
            if shown not in memo:
                remaining = [a for a in range(len(expected)) if not shown >> a & 1]
                if not remaining:
                    return 0.0
                memo[shown] = sum(p * (weights[slot] * expected[a] + rest(shown | 1 << a, slot + 1))
                                  for a, p in zip(remaining, policy.pmf(scores, remaining)) if p > 0)
            return memo[shown]

        return rest(0, 0)


def slate_truth(source: str | Path, *, subscribers: int, contacts: int, seed: int | None = None) -> SlateTruth:
    """The truth of the multi-slot simulator log at ``source`` (``simulator.log_truth``'s
    checks: ``TruthError`` when it does not fit that world)."""
    events = [event for chunk in read_logs(source) for event in chunk if not event.skip_learn]
    if not events:
        raise TruthError(f"{source}: no events")
    seed, base, contacts_of = match_world(events, subscribers=subscribers, contacts=contacts, seed=seed)
    expected, weights, rows = [], [], []
    for i, (event, contact) in enumerate(zip(events, contacts_of)):
        values = [float(v) for v in event.extra["values"]]
        expected.append([accept_probability(base, contact, o) * v for o, v in zip(event.action_ids or [], values)])
        slots = event_slots(event)
        weights.append(attention(contact.channel, len(slots)))
        rows += [(i, remaining) for remaining in available(slots, len(event.actions))]
    return SlateTruth(seed, expected, weights, rows)
