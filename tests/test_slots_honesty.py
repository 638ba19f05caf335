"""Propensity honesty per slot: each slot's logged probability is exactly the chance of its
offer given the slots before it (chi-square over many event-seeded draws, fixed model),
with the propensity floor too: the floored PMF is what is drawn from and logged."""

from __future__ import annotations

from collections import Counter

import orjson
import redis.asyncio as aioredis
import pytest
from scipy.stats import chisquare

from bandit.decide.record import read_record
from bandit.learn.records import action_lines
from bandit.state import DECIDER
from bandit.store.keys import Keys
from policies.exploration import Exploration, apply_floor
from policies.learner import Learner, LearnerSettings
from policies.slates import draw_slots, floored
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


def greedy() -> Learner:
    """A CCB model that explores not at all (epsilon 0): without a floor, all but one offer
    of each slot would never be served, and no other policy could be evaluated on its log."""
    learner = Learner(LearnerSettings(exploration=Exploration("epsilon", epsilon=0.0), slots=True))
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


def test_with_a_floor_every_offer_is_served_at_least_at_the_floor_rate_and_as_often_as_logged():
    share, n = 0.1, 8000   # a large floor, so that the rare offers are counted in thousands of draws
    learner = greedy()
    raw = learner.predict_slot(SHARED, ACTIONS, [])
    assert min(raw) < 0.01   # unfloored, some offers are (almost) never served: the test has teeth
    draws = [draw_slots(floored(lambda shown: learner.predict_slot(SHARED, ACTIONS, shown), share), 3, f"f-{i}")
             for i in range(n)]
    first = draws[0][0].pmf
    assert first == apply_floor(raw, share) and abs(sum(first) - 1) < 1e-12 and min(first) >= share / 5
    counts = Counter(d[0].chosen for d in draws)
    for offer in range(5):   # each offer at least at the floor rate (4 binomial sd below it, at most)
        assert counts[offer] >= n * share / 5 - 4 * (n * share / 5) ** 0.5, counts
    _check(counts, first, n)   # and exactly as often as the logged probability says
    for a, _ in counts.most_common(2):   # slot 2: floored over the 4 offers still free
        given = [d for d in draws if d[0].chosen == a]
        pmf = apply_floor(learner.predict_slot(SHARED, ACTIONS, (a,)), share, (a,))
        assert all(d[1].pmf == pmf for d in given) and pmf[a] == 0.0
        assert min(p for i, p in enumerate(pmf) if i != a) >= share / 4
        _check(Counter(d[1].chosen for d in given), pmf, len(given))
    for d in draws[:200]:   # slot 3: over the 3 left
        free = [p for i, p in enumerate(d[2].pmf) if i not in (d[0].chosen, d[1].chosen)]
        assert min(free) >= share / 3 and abs(sum(d[2].pmf) - 1) < 1e-12


async def test_the_service_serves_and_logs_the_floored_pmf(make_client, redis_url, key_prefix):
    """Through the decide path: every slot's stored PMF is the model's, floored over the offers
    still free; one-slot decisions on a greedy model serve each offer as often as logged."""
    client = await make_client(slots={"contact_center": 3}, value_prior_examples=0, propensity_floor=0.2)
    model = client.app[DECIDER].model
    model.replace(greedy(), 0)
    offers = [{"id": f"o{i}", "features": {"price": float(i)}} for i in range(5)]
    r = aioredis.Redis.from_url(redis_url)
    for i in range(10):
        await client.post("/v1/decide", json={"channel": "contact_center", "offers": offers, "event_id": f"fl-{i}",
                                              "context": {"reason": "roaming"}})
        record = read_record(await r.hget(Keys(key_prefix).event(f"fl-{i}"), "rec"))
        shared, lines = shared_line(record.shared), action_lines(record.actions)
        for n, slot in enumerate(record.slots):
            shown = [s.chosen for s in record.slots[:n]]
            assert slot.pmf == apply_floor(model.learner.predict_slot(shared, lines, shown), 0.2, shown)
            assert min(p for j, p in enumerate(slot.pmf) if j not in shown) >= 0.2 / (5 - n)
    served: Counter = Counter()
    logged: dict[str, set[float]] = {}
    n = 1500
    for i in range(n):
        answer = await (await client.post("/v1/decide", json={"channel": "web", "offers": offers,
                                                              "context": {"reason": "roaming"}})).json()
        (slot,) = answer["slots"]
        served[slot["offer_id"]] += 1
        logged.setdefault(slot["offer_id"], set()).add(slot["probability"])
    await r.aclose()
    pmf = record.slots[0].pmf   # slot 1 of a contact-center decision: the same PMF a web decision draws from
    assert all(logged[f"o{j}"] == {pmf[j]} for j in range(5))   # a fixed model: one logged p per offer
    assert min(pmf) == pytest.approx(0.2 / 5, abs=1e-15) and max(pmf) > 0.8
    assert all(served[f"o{j}"] >= n * 0.04 - 4 * (n * 0.04) ** 0.5 for j in range(5)), served
    _check(Counter({j: served[f"o{j}"] for j in range(5)}), pmf, n)


async def test_the_service_logs_what_its_model_gives_each_slot(make_client, redis_url, key_prefix):
    """What the decider stores for each slot is the model's PMF with the earlier slots
    forced to the offers actually shown, and the answer carries the same numbers."""
    client = await make_client(slots={"contact_center": 3}, value_prior_examples=0)   # the model alone
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


async def test_a_cold_model_ranks_by_prior_times_value_and_hands_over_as_it_learns(make_client, redis_url,
                                                                                   key_prefix):
    """Before any data the PMF of each slot is prior × value, normalized over the offers
    still free; once the model has learned n examples the two are blended n0 : n, and what
    is logged is that blend, exactly."""
    client = await make_client(slots={"contact_center": 3}, value_prior_examples=100)
    offers = [{"id": "cheap", "value": 1.0}, {"id": "dear", "value": 6.0, "prior": 0.2},
              {"id": "mid", "value": 3.0}]   # prior × value: 0.1, 1.2, 0.3
    cold = await (await client.post("/v1/decide", json={"channel": "contact_center", "offers": offers,
                                                        "event_id": "cold-1"})).json()
    ev = {"cheap": 0.1, "dear": 1.2, "mid": 0.3}
    left = dict(ev)
    for slot in cold["slots"]:
        assert abs(slot["probability"] - left[slot["offer_id"]] / sum(left.values())) < 1e-12
        del left[slot["offer_id"]]
    model = client.app[DECIDER].model
    model.replace(trained(), 0)        # 300 examples learned: the prior weighs 100 / 400
    r = aioredis.Redis.from_url(redis_url)
    five = [{"id": f"o{i}", "features": {"price": float(i)}, "value": 1.0 + i} for i in range(5)]
    await client.post("/v1/decide", json={"channel": "contact_center", "offers": five, "event_id": "warm-1",
                                          "context": {"reason": "roaming"}})
    record = read_record(await r.hget(Keys(key_prefix).event("warm-1"), "rec"))
    await r.aclose()
    shared, lines = shared_line(record.shared), action_lines(record.actions)
    first = record.slots[0]
    vw = model.learner.predict_slot(shared, lines, [])
    prior = [0.1 * (1 + i) / sum(0.1 * (1 + j) for j in range(5)) for i in range(5)]
    assert first.pmf == [0.25 * p + 0.75 * q for p, q in zip(prior, vw)]
