"""Why an offer is on the agent's screen, in words an agent can use: the model's top
choice, a tie, or a draw the model makes less often to keep learning (and which offer
it prefers for this caller instead); the control group's random draw; whether the
offer fits the call reason; the eligibility rule it passed. And what the model expects
of each offer: the chance the caller accepts, and the value that makes on average."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from bandit.config import Settings
from bandit.decide.decider import prior_weight
from bandit.decide.record import DecisionRecord
from bandit.learn.records import action_lines
from bandit.store.catalog import Reasons
from bandit.ui.words import say
from policies.learner import Learner
from policies.offers import Offer
from policies.vwtext import shared_line

_TIE = 1e-9


class Preferred(NamedTuple):
    """The offer a slot's PMF favoured when the draw picked another one."""
    name: str
    probability: float
    slot: int | None   # where the favourite was shown instead, if it was


def preferences(record: DecisionRecord | None, offers: Mapping[str, Offer], lang: str = "en") -> dict[int, Preferred]:
    """Per slot number whose drawn offer was not the most probable one of its PMF (named in ``lang``)."""
    if record is None:
        return {}
    shown = {record.offers[s.chosen]: n for n, s in enumerate(record.slots, 1)}
    out: dict[int, Preferred] = {}
    for n, choice in enumerate(record.slots, 1):
        best = max(range(len(choice.pmf)), key=choice.pmf.__getitem__)
        if choice.pmf[best] > choice.probability + _TIE:
            offer_id = record.offers[best]
            offer = offers.get(offer_id)
            out[n] = Preferred(offer.spec.text("name", lang) if offer is not None else offer_id, choice.pmf[best],
                               shown.get(offer_id))
    return out


def acceptance_estimates(record: DecisionRecord | None, learner: Learner, settings: Settings,
                         offers: Mapping[str, Offer]) -> dict[str, float]:
    """Per offer of the decision, the chance the caller accepts as the model expects it:
    its reward estimate (``Learner.expected_rewards``) read back through the outcomes'
    rewards (``outcomes`` of the sale outcome and of ``decline``; under ``reward_objective:
    value`` per unit of the offer's value), and, while the model is young, blended with the
    catalog's ``prior`` by the weight the decision's own ranking gives it
    (``value_prior_examples``). Empty when there is nothing to read it from: no record, no
    accept-like outcome, ``--cover``, or an offer worth 0 under the value objective."""
    if record is None or not settings.sale_outcomes:
        return {}
    accept = settings.outcomes[settings.sale_outcomes[0]]
    decline = settings.outcomes.get("decline", settings.default_reward)
    if accept == decline:
        return {}
    rewards = learner.expected_rewards(shared_line(record.shared), action_lines(record.actions))
    if rewards is None:
        return {}
    weight = prior_weight(settings.value_prior_examples, learner.learned)
    per_value = settings.reward_objective == "value"
    out: dict[str, float] = {}
    for offer_id, value, reward in zip(record.offers, record.values or [None] * len(record.offers), rewards):
        if per_value and not value:
            continue
        model = min(1.0, max(0.0, ((reward / value if per_value else reward) - decline) / (accept - decline)))
        offer = offers.get(offer_id)
        prior = offer.spec.prior if offer is not None else model
        out[offer_id] = weight * prior + (1.0 - weight) * model
    return out


def offer_card(rank: int, item: dict[str, Any], policy: str, offer: Offer | None, reason: str | None,
               eligible: int, control_policy: str, preferred: Preferred | None = None,
               lang: str = "en", reasons: Reasons | None = None, acceptance: float | None = None) -> dict[str, Any]:
    """A card for a slot of the decision (``slot`` in ``item``: shown, with its own outcome
    buttons) or, in a one-slot deployment, a runner-up that was not shown; its name, pitch
    and terms in the page's language (the catalog's ``locales``); ``acceptance`` the
    model's expected chance of a yes (``acceptance_estimates``)."""
    p = float(item["probability"])
    slot = item.get("slot")
    spec = offer.spec if offer is not None else None
    name = spec.text("name", lang) if spec else item["offer_id"]
    model = policy != "control"
    pf = f"{preferred.probability:.2f}" if preferred is not None else ""
    if slot == 1 and not model:
        how = (say(lang, "Control group: the most valuable eligible offer") if control_policy == "priority"
               else say(lang, "Control group: drawn at random among {n} eligible offers", n=eligible))
    elif slot is not None and model and preferred is not None and preferred.probability < 1.5 * p:
        how = say(lang, "A close call: the model rates {fav} about as high for this caller (p = {pf} against {p} "
                  "for {name}); either could be shown", fav=preferred.name, pf=pf, p=f"{p:.2f}", name=name)
    elif slot is not None and model and preferred is not None:
        where = (say(lang, ", offered in slot {slot}", slot=preferred.slot)
                 if preferred.slot not in (None, slot) else "")
        how = say(lang, "The model prefers {fav} for this caller (p = {pf}{where}); {name} is shown less often "
                  "(p = {p}), to keep learning what callers like this one take",
                  fav=preferred.name, pf=pf, where=where, name=name, p=f"{p:.2f}")
    elif slot == 1:
        how = _how_drawn(p, eligible, reason_label(reasons or {}, reason, lang) if reason else None, lang)
    elif slot is not None:
        how = say(lang, "Slot {slot}: the model's top choice among the {left} offers not shown above (p = {p} given "
                  "them)" if model else "Slot {slot}: the baseline's draw among the {left} offers not shown above "
                  "(p = {p} given them)", slot=slot, left=eligible - slot + 1, p=f"{p:.2f}")
    else:
        how = say(lang, "Not shown: next by the model's probability" if model
                  else "Not shown: next by the baseline's probability")
    why = [how]
    if spec is not None and reason and spec.category == reason:
        why.append(say(lang, "fits the call reason \u201c{reason}\u201d", reason=reason_label(reasons or {}, reason, lang)))
    if spec is not None and spec.eligibility:
        why.append(say(lang, "eligible: {rule}", rule=spec.eligibility))
    return {"rank": rank, "slot": slot, "offer_id": item["offer_id"], "served": slot is not None, "probability": p,
            "policy": policy, "name": name, "description": spec.text("description", lang) if spec else "",
            "terms": spec.text("terms", lang) if spec else "",
            "category": spec.category if spec else "", "value": spec.value if spec else None, "why": why,
            "acceptance": acceptance,
            "expected_value": acceptance * spec.value if acceptance is not None and spec is not None else None}


def reason_label(reasons: Reasons, reason: str, lang: str = "en") -> str:
    """The catalog's label for a call reason in ``lang``, else in English, else in any
    language it has; a reason the catalog does not list is shown as its code."""
    labels = reasons.get(reason) or {}
    for tag in (lang, lang.split("-")[0], "en"):
        if tag in labels:
            return labels[tag]
    return next(iter(labels.values()), reason)


def _how_drawn(p: float, eligible: int, reason: str | None, lang: str) -> str:
    """Slot 1 of the model when it drew its favourite: a clear one, a tie, or a close call
    (``reason``: the call reason's label)."""
    uniform = 1.0 / max(eligible, 1)
    if abs(p - uniform) <= _TIE:
        return say(lang, "The model rates these offers alike so far: drawn at random among them")
    if p < uniform - _TIE:   # (the decision record was not at hand to name the favourite)
        return say(lang, "An exploration draw: the model tries it now and then to keep learning")
    if p >= 0.5 and reason:
        return say(lang, "The model's top choice for this caller calling about \u201c{reason}\u201d",
                   reason=reason)
    if p >= 0.5:
        return say(lang, "The model's top choice for this caller")
    return say(lang, "The model's first choice for this caller, by a small margin (p = {p})", p=f"{p:.2f}")
