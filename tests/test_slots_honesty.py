"""Propensity honesty per slot: each slot's logged probability is exactly the chance of its
offer given the slots before it (chi-square over many event-seeded draws, fixed model)."""

from __future__ import annotations

from collections import Counter

import orjson
import redis.asyncio as aioredis
from scipy.stats import chisquare

from bandit.decide.record import read_record
from bandit.learn.records import action_lines
from bandit.state import DECIDER
from bandit.store.keys import Keys
from policies.exploration import Exploration
from policies.learner import Learner, LearnerSettings
from policies.slates import draw_slots
from policies.vwtext import shared_line

SHARED = "shared |Context reason=roaming"
ACTIONS = [f"|Offer id=o{i} price:{i}.0" for i in range(5)]


def trained() -> Learner:
    """A CCB model with a clear, non-uniform PMF in every slot."""
    learner = Learner(LearnerSettings(exploration=Exploration("epsilon", epsilon=0.3), slots=True))
    for n in range(300):
        shown = [(n + j) % 5 for j in range(3)]
        learner.learn_slots(SHARED, ACTIONS, [(a, 1 / (5 - j), 1.0 if a in (2, 4) else 0.0)
                                              for j, a in enumerate(shown)])
    return learner


def _check(counts: Counter, pmf: list[float], total: int) -> None:
    support = [i for i, p in enumerate(pmf) if p > 0]
    assert all(counts[i] == 0 for i in range(len(pmf)) if pmf[i] == 0), "an action of probability 0 was drawn"
    observed = [counts[i] for i in support]
    expected = [pmf[i] * total for i in support]
    assert chisquare(observed, expected).pvalue > 1e-3, (observed, expected)


def test_each_slot_is_drawn_with_its_logged_probability_given_the_earlier_slots():
    learner = trained()
    draws = [draw_slots(lambda shown: learner.predict_slot(SHARED, ACTIONS, shown), 3, f"event-{i}")
             for i in range(6000)]
    first = draws[0][0].pmf
    assert max(first) > 0.5 and min(first) < 0.2   # the model is not uniform: the test has teeth
    assert all(d[0].pmf == first for d in draws)    # a fixed model: the same slot-1 PMF every time
    _check(Counter(d[0].chosen for d in draws), first, len(draws))
    # slot 2 given slot 1's offer, slot 3 given both: for the commonest histories
    for a, _ in Counter(d[0].chosen for d in draws).most_common(2):
        given = [d for d in draws if d[0].chosen == a]
        pmf = learner.predict_slot(SHARED, ACTIONS, (a,))
        assert all(d[1].pmf == pmf for d in given)
        _check(Counter(d[1].chosen for d in given), pmf, len(given))
    (a, b), n = Counter((d[0].chosen, d[1].chosen) for d in draws).most_common(1)[0]
    assert n > 300
    given = [d for d in draws if (d[0].chosen, d[1].chosen) == (a, b)]
    pmf = learner.predict_slot(SHARED, ACTIONS, (a, b))
    _check(Counter(d[2].chosen for d in given), pmf, len(given))


async def test_the_service_logs_what_its_model_gives_each_slot(make_client, redis_url, key_prefix):
    """What the decider stores for each slot is the model's PMF with the earlier slots
    forced to the offers actually shown, and the answer carries the same numbers."""
    client = await make_client(slots={"contact_center": 3})
    model = client.app[DECIDER].model
    model.replace(trained(), 0)
    offers = [{"id": f"o{i}", "features": {"price": float(i)}} for i in range(5)]
    r = aioredis.Redis.from_url(redis_url)
    for i in range(20):
        response = await client.post("/v1/decide", json={"channel": "contact_center", "offers": offers,
                                                         "event_id": f"h-{i}", "context": {"reason": "roaming"}})
        answer = await response.json()
        record = read_record(await r.hget(Keys(key_prefix).event(f"h-{i}"), "rec"))
        shared, lines = shared_line(record.shared), action_lines(record.actions)
        for n, slot in enumerate(record.slots):
            assert slot.pmf == model.learner.predict_slot(shared, lines, [s.chosen for s in record.slots[:n]])
            assert answer["slots"][n] == {"slot": n + 1, "offer_id": record.offers[slot.chosen],
                                          "probability": slot.pmf[slot.chosen]}
    await r.aclose()
    assert orjson.loads(orjson.dumps(answer))["slots"]
