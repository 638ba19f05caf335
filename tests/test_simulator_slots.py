"""The simulator's slates without a service: the position effect, the per-slot answers,
the slate truth (the oracle is the best slate; a random slate's value), the summary on
slates, and that a one-slot run gives exactly the figures of a single offer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.drive import Outcome, read_decision, reward_body, slot_answer
from bandit.config import load_settings
from simulator.run import EXAMPLE_CONFIG

SLOTS = {"contact_center": 3, "web": 3, "search": 3}   # slates of several sizes
from simulator.slate import best_slate, random_slate_value, slate_value
from simulator.summary import summarize
from simulator.truth import BASE, expected_values
from simulator.world import (
    ATTENTION,
    CHANNEL_SHARE,
    CHANNELS,
    MAX_SLOTS,
    REPLY_SECONDS,
    SILENT_DECLINES,
    Contact,
    SlotDraw,
    attention,
    generate_base,
    generate_contacts,
)

OFFERS = tuple(BASE)   # the nine offers the truth knows
VALUES = {"home_cities": 105.0, "balance_control": 3.0, "roaming_discount": 450.0, "sms_pack": 40.0,
          "unlimited_internet": 250.0, "favourite_country": 150.0, "ringback_tones": 45.0, "child_locator": 60.0,
          "mobile_mail": 20.0}


def test_attention_is_one_on_slot_one_and_never_rises_along_a_slate():
    assert set(ATTENTION) == set(CHANNELS) and ATTENTION["ussd"] == (1.0,)
    for channel, weights in ATTENTION.items():
        assert weights[0] == 1.0, channel   # slot 1 is always heard: one slot is the single offer of before
        assert all(0 < b <= a <= 1 for a, b in itertools.pairwise(weights)), channel
    assert attention("contact_center", 3) == [1.0, 0.6, 0.35]
    assert attention("ussd", 3) == [1.0, 0.0, 0.0]   # past the channel's list: never heard
    assert MAX_SLOTS == max(len(w) for w in ATTENTION.values())


def test_slot_one_is_the_draw_a_single_offer_always_had():
    """The slots' draws come after every other draw: the contacts, slot 1's answer, its
    delay and silence are the numbers of a simulator without slots."""
    base, n, seed = generate_base(400, 3), 2000, 3
    contacts = generate_contacts(base, n, seed)
    rng = np.random.default_rng([seed, 2])
    rng.integers(0, len(base), size=n)
    rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARE)
    rng.random((n, 1))
    uniform, _, _, reply_u, silent_u = (rng.random(n) for _ in range(5))
    assert [c.uniform for c in contacts] == uniform.tolist()
    for c, r, s in zip(contacts, reply_u, silent_u):
        low, high = REPLY_SECONDS[c.channel]
        assert c.draw(1) == SlotDraw(c.uniform, c.reply_seconds, c.silent)
        assert c.reply_seconds == low + (high - low) * r and c.silent == (s < SILENT_DECLINES[c.channel])
        assert len(c.more_slots) == MAX_SLOTS - 1 and c.draw(MAX_SLOTS + 1) == c.draw(1)
    with pytest.raises(ValueError):
        contacts[0].draw(0)


def test_slot_answers_follow_attention_times_acceptance_and_the_silent_shares():
    """Slot s is taken with attention[s] × P(accept), independently of the other slots; a
    decline in any slot goes unreported with the channel's share; answers come within the
    channel's delays."""
    base = generate_base(500, 5)
    contacts = generate_contacts(base, 40_000, 5)
    p = 0.5
    for channel, weights in ATTENTION.items():
        here = [c for c in contacts if c.channel == channel]
        low, high = REPLY_SECONDS[channel]
        taken = np.array([[slot_answer(c.draw(s + 1), w, p) == "accept" for s, w in enumerate(weights)]
                          for c in here])
        tolerance = 4 * math.sqrt(0.25 / len(here))
        for s, w in enumerate(weights):
            assert abs(taken[:, s].mean() - w * p) < tolerance, (channel, s + 1)
            answers = [slot_answer(c.draw(s + 1), w, p) for c in here]
            declines = [a for a in answers if a != "accept"]
            assert abs(declines.count("silent") / len(declines) - SILENT_DECLINES[channel]) < 0.03, (channel, s + 1)
            assert all(low <= c.draw(s + 1).reply_seconds <= high for c in here)
        if len(weights) > 1:   # independent slots: taking slot 1 says nothing about slot 2
            both = (taken[:, 0] & taken[:, 1]).mean()
            assert abs(both - taken[:, 0].mean() * taken[:, 1].mean()) < tolerance, channel
    never = Contact(0, 0, "ussd", "roaming", {}, 0.0, 10.0, False)
    assert slot_answer(never.draw(2), attention("ussd", 2)[1], 0.9) == "decline"   # a slot nobody hears
    assert slot_answer(SlotDraw(0.3, 1.0, True), 0.6, 0.5) == "silent"             # 0.3 ≥ 0.6 × 0.5
    assert slot_answer(SlotDraw(0.29, 1.0, True), 0.6, 0.5) == "accept"


def test_a_decision_with_slots_is_read_slot_by_slot_and_each_slot_rewarded_with_its_offer():
    catalog = ["home_cities", "balance_control", "sms_pack", "roaming_discount", "mobile_mail"]
    decision = {"event_id": "sim-7-1", "policy": "model",
                "slots": [{"slot": 2, "offer_id": "sms_pack", "probability": 0.2},
                          {"slot": 1, "offer_id": "home_cities", "probability": 0.7}],
                "ranking": [{"offer_id": "home_cities", "probability": 0.7},
                            {"offer_id": "sms_pack", "probability": 0.2}],
                "excluded": [{"offer_id": "roaming_discount", "reason": "rule", "detail": "balance >= 0"}]}
    served = read_decision(decision, catalog)
    assert served.slate == ["home_cities", "sms_pack"] and served.per_slot
    # ranking cut to the slate: the rest of the eligible offers come from the catalog minus the excluded
    assert served.eligible == ["home_cities", "sms_pack", "balance_control", "mobile_mail"]
    assert served.probabilities[:2] == [0.7, 0.2] and all(math.isnan(x) for x in served.probabilities[2:])
    assert reward_body("sim-7-1", "sms_pack", "accept", served.per_slot) == \
        {"event_id": "sim-7-1", "outcome": "accept", "offer_id": "sms_pack"}
    # a service without slots: ranking[:1] is a slate of one, and the reward has no offer_id
    before = {"event_id": "e", "ranking": [{"offer_id": "sms_pack", "probability": 0.6},
                                           {"offer_id": "home_cities", "probability": 0.4}], "excluded": []}
    one = read_decision(before, catalog)
    assert one.slate == ["sms_pack"] and not one.per_slot
    assert one.eligible == ["sms_pack", "home_cities", "balance_control", "roaming_discount", "mobile_mail"]
    assert reward_body("e", "sms_pack", "decline", one.per_slot) == {"event_id": "e", "outcome": "decline"}
    assert read_decision({"event_id": None, "ranking": [], "excluded": []}, catalog).slate == []


def _all_slates(n: int, size: int) -> list[tuple[int, ...]]:
    return list(itertools.permutations(range(n), min(size, n)))


def test_the_oracle_slate_is_the_best_slate_under_the_truth():
    """Brute force over every ordered slate: sorting by expected value is the best slate
    for every channel's attention (and random non-increasing ones), and the random slate's
    value is the mean over all slates."""
    rng = np.random.default_rng(1)
    weight_sets = [list(w) for w in ATTENTION.values()] + \
        [sorted(rng.uniform(0, 1, size=k).tolist(), reverse=True) for k in (2, 3, 4) for _ in range(5)]
    for weights in weight_sets:
        for n in range(1, 7):
            for _ in range(10):
                ev = rng.exponential(10, size=n).tolist()
                if rng.random() < 0.3:
                    ev[0] = ev[-1]   # ties
                slates = _all_slates(n, len(weights))
                values = [slate_value(weights, ev, s) for s in slates]
                oracle = best_slate(ev, len(weights))
                assert slate_value(weights, ev, oracle) == pytest.approx(max(values), rel=1e-12)
                assert random_slate_value(weights, ev) == pytest.approx(float(np.mean(values)), rel=1e-12)
    # the real truth: contact-center calls, all nine offers, three slots
    base = generate_base(2000, 9)
    calls = [c for c in generate_contacts(base, 300, 9) if c.channel == "contact_center"][:40]
    weights = attention("contact_center", 3)
    for call in calls:
        accept, ev = expected_values(base, call, OFFERS, VALUES)
        values = [slate_value(weights, ev, s) for s in _all_slates(len(OFFERS), 3)]
        assert slate_value(weights, ev, best_slate(ev, 3)) == pytest.approx(max(values), rel=1e-12)
        assert slate_value(weights, accept, best_slate(accept, 3)) >= slate_value(weights, accept, best_slate(ev, 3))


def _outcomes(slots: int, n: int = 3000, seed: int = 4) -> list[Outcome]:
    """Decisions over the real truth as a service might have served them (the simulator's
    own service's slots per channel, at most ``slots``): the model's subscribers a slate
    by a noisy score, the control group's a random one."""
    base = generate_base(1000, seed)
    rng = np.random.default_rng(seed)
    outcomes = []
    for c in generate_contacts(base, n, seed):
        eligible = [o for o in OFFERS if rng.random() < 0.8] or ["sms_pack"]
        accept, ev = expected_values(base, c, eligible, VALUES)
        control = rng.random() < 0.1
        score = rng.random(len(eligible)) if control else np.array(ev) * rng.lognormal(0.0, 1.5, len(eligible))
        order = [int(i) for i in np.argsort(-score, kind="stable")]
        size = min(slots, SLOTS.get(c.channel, 1), len(eligible))
        o = Outcome(c.index, c.channel, c.intent, [eligible[i] for i in order], [1.0] * len(eligible),
                    [accept[i] for i in order], [ev[i] for i in order], attention(c.channel, size),
                    "control" if control else "model")
        o.answers = [slot_answer(c.draw(s + 1), o.attention[s], o.accept[s]) for s in range(size)]
        o.accepted = [a == "accept" for a in o.answers]
        outcomes.append(o)
    return outcomes


def test_one_slot_gives_the_figures_of_a_single_offer():
    """With one slot the slate figures are those of the simulator without slots: the
    served offer's P(accept) and P(accept) × value, random's mean over the eligible
    offers, priority's most valuable offer, the oracle's best expected value."""
    outcomes = _outcomes(slots=1)
    summary = summarize(outcomes, VALUES)
    model = np.array([o.policy == "model" for o in outcomes])
    old = {"learned": [o.value[0] for o, m in zip(outcomes, model) if m],
           "control": [o.value[0] for o, m in zip(outcomes, model) if not m],
           "random": [float(np.mean(o.value)) for o in outcomes],
           "priority": [o.value[max(range(len(o.offers)), key=lambda i: (VALUES[o.offers[i]], -i))] for o in outcomes],
           "oracle": [max(o.value) for o in outcomes]}
    for name, values in old.items():
        assert summary["policies"][name]["value_per_decision"] == pytest.approx(np.mean(values), rel=1e-12), name
    assert summary["policies"]["learned"]["acceptances_per_decision"] == \
        pytest.approx(np.mean([o.accept[0] for o, m in zip(outcomes, model) if m]), rel=1e-12)
    last = np.arange(len(outcomes)) >= int(len(outcomes) * 0.8)
    learned = _last_of_model(model, last, [o.value[0] for o in outcomes])
    random = _last_of_model(model, last, [float(np.mean(o.value)) for o in outcomes])
    oracle = _last_of_model(model, last, [max(o.value) for o in outcomes])
    assert summary["gap_closed"] == pytest.approx((learned - random) / (oracle - random), rel=1e-12)
    regret = sum(max(o.value) - o.value[0] for o, m in zip(outcomes, model) if m)
    assert summary["regret"]["total"] == pytest.approx(regret, rel=1e-12)
    observed = np.mean([VALUES[o.offers[0]] * o.accepted[0] for o, m in zip(outcomes, model) if m])
    assert summary["policies"]["learned"]["observed_value_per_decision"] == pytest.approx(observed, rel=1e-12)
    assert summary["slots_per_decision"] == 1.0 and len(summary["per_slot"]) == 1
    assert sum(summary["rewards"].values()) == summary["decisions"] == summary["slots_served"]


def test_the_summary_measures_slates_and_gap_closed_on_the_slate_value():
    outcomes = _outcomes(slots=3)
    summary = summarize(outcomes, VALUES)
    policies = summary["policies"]
    # by hand, on the slate: Σ attention × P(accept) × value
    learned = [sum(w * v for w, v in zip(o.attention, o.value)) for o in outcomes if o.policy == "model"]
    assert policies["learned"]["value_per_decision"] == pytest.approx(np.mean(learned), rel=1e-12)
    oracle = [sum(w * v for w, v in zip(o.attention, sorted(o.value, reverse=True))) for o in outcomes]
    assert policies["oracle"]["value_per_decision"] == pytest.approx(np.mean(oracle), rel=1e-12)
    assert policies["oracle"]["value_per_decision"] > policies["learned"]["value_per_decision"] > \
        policies["random"]["value_per_decision"]
    # a slate is worth more than its first slot, which is worth what a single offer was
    first = np.mean([o.value[0] for o in outcomes if o.policy == "model"])
    assert policies["learned"]["value_per_decision"] > first
    assert summary["per_slot"][0]["value_per_decision"] == pytest.approx(first, rel=1e-12)
    assert [s["slot"] for s in summary["per_slot"]] == [1, 2, 3]
    assert summary["per_slot"][1]["attention"] < 1.0 and summary["per_slot"][2]["attention"] < \
        summary["per_slot"][1]["attention"]
    assert summary["slots_served"] == sum(o.slots for o in outcomes) == sum(summary["rewards"].values())
    assert 1.0 < summary["slots_per_decision"] < 3.0   # USSD serves one
    assert summary["per_channel"]["ussd"]["slots_per_decision"] == 1.0
    last = np.arange(len(outcomes)) >= int(len(outcomes) * 0.8)
    model = np.array([o.policy == "model" for o in outcomes])
    learned_last = _last_of_model(model, last, [sum(w * v for w, v in zip(o.attention, o.value))
                                                for o in outcomes])
    random_last = _last_of_model(model, last, [sum(o.attention) * float(np.mean(o.value)) for o in outcomes])
    oracle_last = _last_of_model(model, last, oracle)
    assert summary["gap_closed"] == pytest.approx((learned_last - random_last) / (oracle_last - random_last),
                                                  rel=1e-12)
    taken = np.mean([sum(o.accepted) for o in outcomes if o.policy == "model"])
    assert policies["learned"]["observed_acceptances_per_decision"] == pytest.approx(taken, rel=1e-12)
    served = sum(row["served"] for row in summary["per_offer"].values())
    assert served == sum(o.slots for o in outcomes if o.policy == "model")


def test_the_demo_service_shows_three_offers_on_the_contact_center_and_every_slot_can_be_heard():
    settings = load_settings(EXAMPLE_CONFIG, env={})
    assert settings.slots == {"contact_center": 3}
    assert all(n <= len(ATTENTION[channel]) for channel, n in settings.slots.items())


def _last_of_model(model: np.ndarray, last: np.ndarray, xs: list[float]) -> float:
    """The mean over the learned policy's decisions in the last 20%: gap_closed's window."""
    return float(np.mean([x for x, m, l in zip(xs, model, last, strict=True) if m and l]))
