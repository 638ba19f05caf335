"""JSON endpoints behind the pages. They add what the public API lacks for a screen
(the caller card on channel scope, names and reasons next to a ranking, counters by
minute, caps against today's use) and reuse the decider, catalog and store for the
rest; everything else the pages do goes through the public API itself."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec
import orjson
from aiohttp import web

from bandit.observe import analytics
from bandit.http.auth import requires
from bandit.errors import ApiError
from bandit.http.bodies import AgentDecision, CallerCard, CallReason, CallReasons, struct_response
from bandit.http.handlers import admit, json_body, json_response
from bandit.decide.schemas import DecideRequest, SubscriberId, decode
from bandit.state import CATALOG, DECIDER, PROFILES, SETTINGS, STORE
from bandit.store.backlog import COUNT_CAP, read_backlog
from bandit.ui.desk import subscriber_number
from bandit.store.catalog import Catalog
from bandit.ui.explain import acceptance_estimates, offer_card, preferences, reason_label
from bandit.ui.words import language, say
from bandit.decide.record import read_record

AGENT_CHANNEL = "contact_center"
AGENT_K = 3
CONTACTS_KEPT = 20
CONTACTS_SHOWN = 5
CONTACTS_TTL = 90 * 86400
STATES = {"p": "pending", "j": "joined", "d": "no answer", "x": "dropped"}


# What an agent reads instead of a validator's words
_WORDS = {"reason": "Choose the call reason from the list.",
          "reason_text": "What the caller says is too long: keep it under 1,000 characters.",
          "subscriber_id": "That is not a number we can look up: type the caller's number."}


class AgentDecide(msgspec.Struct, forbid_unknown_fields=True):
    subscriber_id: SubscriberId
    reason: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reason_text: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


def _subscriber(request: web.Request) -> tuple[str, str]:
    subscriber_id = subscriber_number(request.app, request.match_info["subscriber_id"], language(request))
    return subscriber_id, request.app[DECIDER].subscriber_hash(subscriber_id)


@requires("channel")
async def reasons(request: web.Request) -> web.Response:
    """The call reasons and the decline reasons of the catalog, in its order, labelled in the page's language."""
    lang = language(request)
    listed, declines = await request.app[CATALOG].both_reasons()
    return struct_response(CallReasons([CallReason(code, reason_label(listed, code, lang)) for code in listed],
                                       [CallReason(code, reason_label(declines, code, lang)) for code in declines],
                                       "not_now" in request.app[SETTINGS].outcomes))


@requires("channel")
async def caller(request: web.Request) -> web.Response:
    """Who is calling: the stored profile (with what they accepted since), the names of
    the services that are catalog offers, and the desktop's last few contacts."""
    subscriber_id, sid = _subscriber(request)
    lang = language(request)
    profile = await request.app[PROFILES].believed(sid)
    catalog = await request.app[CATALOG].current()
    services = profile.get("services") if isinstance(profile, dict) else None
    names = {s: _name(catalog, s, lang) for s in services or () if isinstance(s, str) and s in catalog.offers}
    return struct_response(CallerCard(subscriber_id, profile is not None, profile, names,
                                      await _recent_contacts(request, sid, lang, catalog)))


async def _recent_contacts(request: web.Request, sid: str, lang: str, catalog: Catalog) -> list[dict[str, Any]]:
    """Newest first, each with what became of its decision (while Redis keeps it), the
    reason's label and the offer's name in the page's language."""
    store = request.app[STORE]
    listed, declines = await request.app[CATALOG].both_reasons()
    contacts = [orjson.loads(raw) for raw in await store.redis.lrange(store.keys.ui_contacts(sid), 0,
                                                                      CONTACTS_SHOWN - 1)]
    async with store.redis.pipeline(transaction=False) as pipe:
        for contact in contacts:
            pipe.hmget(store.keys.event(contact["event_id"]), "st", "r")
        states = await pipe.execute()
    for contact, (state, reward) in zip(contacts, states):
        contact["state"] = STATES.get(state.decode(), "unknown") if state else "expired"
        contact["reward"] = float(reward) if reward is not None and state == b"j" else None
        contact["reason_label"] = reason_label(listed, contact["reason"], lang) if contact.get("reason") else None
        if contact.get("offer_id") in catalog.offers:
            contact["offer_name"] = _name(catalog, contact["offer_id"], lang)
        for offer_id, said in contact.get("answers", {}).items():   # what the caller said to each offer
            said["name"] = _name(catalog, offer_id, lang)
            if "reason" in said:
                said["reason_label"] = reason_label(declines, said["reason"], lang)
    return contacts


@requires("channel")
async def agent_decide(request: web.Request) -> web.Response:
    """A real, logged contact-center decision (k=3, explained), with each offer's name,
    pitch, value and why it is there; remembered in the caller's recent contacts."""
    lang = language(request)
    try:
        body = decode(await json_body(request), AgentDecide)
    except ApiError as exc:
        if exc.field in _WORDS and exc.code == "invalid_field":
            raise ApiError(400, exc.code, say(lang, _WORDS[exc.field]), exc.field) from None
        raise
    assert isinstance(body, AgentDecide)
    app = request.app
    subscriber_id = subscriber_number(app, body.subscriber_id, lang)   # an invalid number makes no decision
    admit(app, "decide")
    context = {name: value.strip() for name, value in (("reason", body.reason), ("reason_text", body.reason_text))
               if value and value.strip()}
    if not context:
        raise ApiError(400, "invalid_field", say(lang, "Choose the call reason, or write down what the caller says."),
                       "reason")
    reasons_listed = await app[CATALOG].reasons()
    if "reason" in context and reasons_listed and context["reason"] not in reasons_listed:
        raise ApiError(400, "invalid_field", say(lang, "\u201c{reason}\u201d is not a call reason of the catalog: "
                       "choose one from the list.", reason=context["reason"][:64]), "reason")
    decider = app[DECIDER]
    decision = await decider.decide(DecideRequest(channel=AGENT_CHANNEL, subscriber_id=subscriber_id,
                                                  context=context, k=AGENT_K, explain=True))
    catalog = await app[CATALOG].current()
    excluded = decision.excluded or []
    shown = {slot["offer_id"] for slot in decision.slots}
    listed = [*decision.slots, *[{"offer_id": r["offer_id"], "probability": r["probability"]}
                                 for r in decision.ranking if r["offer_id"] not in shown]]
    eligible = max(len(catalog.offers) - len(excluded), len(listed))
    store = app[STORE]
    raw = await store.redis.hget(store.keys.event(decision.event_id), "rec") if decision.event_id else None
    record = read_record(raw) if raw else None
    preferred = preferences(record, catalog.offers, lang)
    learner = decider.model.learner
    acceptance = acceptance_estimates(record, learner, app[SETTINGS], catalog.offers)
    offers = [offer_card(rank, item, decision.policy or "model", catalog.offers.get(item["offer_id"]),
                         context.get("reason"), eligible, app[SETTINGS].control_policy, preferred.get(item.get("slot")),
                         lang, reasons_listed, acceptance.get(item["offer_id"]))
              for rank, item in enumerate(listed, start=1)]
    if decision.event_id is not None:
        await _remember(request, decider.subscriber_hash(subscriber_id), {
            "ts": int(time.time() * 1000), "event_id": decision.event_id, "channel": AGENT_CHANNEL, **context,
            "offer_id": offers[0]["offer_id"], "offer_name": offers[0]["name"]})
    return struct_response(AgentDecision(  # the cards and exclusions are dicts of their Structs' shape
        decision.event_id, subscriber_id, decision.policy, decision.model_version,  # type: ignore[arg-type]
        decision.catalog_version, decision.subscriber_known, eligible, len(excluded), offers,  # type: ignore[arg-type]
        [{**e, "name": _name(catalog, e["offer_id"], lang)} for e in excluded],  # type: ignore[misc]
        learned=learner.learned))


def _name(catalog: Catalog, offer_id: str, lang: str) -> str:
    offer = catalog.offers.get(offer_id)
    return offer.spec.text("name", lang) if offer is not None else offer_id


async def _remember(request: web.Request, sid: str, contact: dict[str, Any]) -> None:
    store = request.app[STORE]
    key = store.keys.ui_contacts(sid)
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.lpush(key, orjson.dumps(contact))
        pipe.ltrim(key, 0, CONTACTS_KEPT - 1)
        pipe.expire(key, CONTACTS_TTL)
        await pipe.execute()


@requires("admin")
async def analytics_window(request: web.Request) -> web.Response:
    window = request.query.get("window", "1h")
    if window not in analytics.WINDOWS:
        raise ApiError(400, "invalid_field", f"window must be one of {', '.join(analytics.WINDOWS)}", "window")
    store = request.app[STORE]
    return json_response(await analytics.query(store.redis, store.keys, window))


@requires("admin")
async def overview(request: web.Request) -> web.Response:
    """Sales-plan caps against today's counters, and how far each stream consumer lags."""
    store = request.app[STORE]
    backlog = await read_backlog(store.redis, store.keys, COUNT_CAP)   # the one reading: see bandit.store.backlog
    return json_response({"caps": await _caps(request), "consumers": backlog.as_json()["consumers"],
                          "pending": await store.pending_count()})


_CAPS = (("impressions_per_day", "imp", True), ("impressions_total", "imp", False),
         ("accepts_per_day", "acc", True), ("accepts_total", "acc", False))


async def _caps(request: web.Request) -> list[dict[str, Any]]:
    keys = request.app[STORE].keys
    day = datetime.now(timezone.utc).strftime("%Y%m%d")
    plan: list[tuple[dict[str, Any], list[str]]] = []
    for offer in (await request.app[CATALOG].current()).offers.values():
        for name, kind, daily in _CAPS:
            cap = getattr(offer.spec.caps, name)
            if cap is None:
                continue
            period = day if daily else "total"
            counters = [keys.cap(offer.id, kind, period)]
            if kind == "acc":   # acceptance caps also hold a unit per decision in flight
                counters.append(keys.cap(offer.id, "res", period))
            plan.append(({"offer_id": offer.id, "name": offer.spec.name, "cap": name, "limit": cap,
                          "period": "today (UTC)" if daily else "in total"}, counters))
    flat = [key for _, counters in plan for key in counters]
    values = iter(await request.app[STORE].mget(flat) if flat else [])
    for row, counters in plan:
        used = [int(next(values) or 0) for _ in counters]
        row["used"], row["pending"] = used[0], (used[1] if len(used) > 1 else 0)
    return [row for row, _ in plan]

