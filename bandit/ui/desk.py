"""The agent desktop's answer buttons: an outcome belongs to the call it was offered in.

``POST /ui/api/agent/reward`` carries the event id *and* the caller's number, and is
refused (409 ``other_subscriber``) when that event was decided for someone else: a
screen that still showed the previous caller's offers cannot credit them to the next
one. A Decline may say why (the catalog's ``decline_reasons``): it is posted as the outcome
of that name when one is configured (its own reward), else as ``decline``. Everything else
is ``POST /v1/reward``'s own handling; what was answered is kept with the call in the
caller's recent contacts."""

from __future__ import annotations

from typing import Annotated

import msgspec
import orjson
from aiohttp import web
from redis.exceptions import WatchError

from bandit.decide.schemas import Identifier, RewardRequest, SubscriberId, decode
from bandit.errors import ApiError
from bandit.http.auth import requires
from bandit.http.handlers import json_body, post_reward
from bandit.store.identity import SubscriberIdError, canonical_subscriber_id, phone_e164
from bandit.state import CATALOG, DECIDER, SETTINGS, STORE
from bandit.ui.words import language, say


def subscriber_number(app: web.Application, raw: str, lang: str = "en") -> str:
    """The caller's number as the service keys it: E.164 (``+79877398022``) in a deployment
    with ``phone_region`` (``bandit.store.identity.phone_e164``, its refusal in the page's
    language); else by the service's one rule for subscriber ids."""
    text = raw.strip()
    if not text:
        raise ApiError(400, "invalid_field", say(lang, "Enter the caller's number."), "subscriber_id")
    settings = app[SETTINGS]
    try:
        if settings.phone_region is None:
            return canonical_subscriber_id(text, settings.subscriber_ids == "phone", None)
        return phone_e164(text, settings.phone_region)
    except SubscriberIdError as exc:
        values = {**exc.values, **{k: say(lang, v) for k, v in exc.values.items() if k in ("example", "why")}}
        raise ApiError(400, "invalid_field", say(lang, exc.template, **values), "subscriber_id") from None


class AgentReward(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Identifier
    subscriber_id: SubscriberId
    offer_id: Identifier   # the service's one id rule for offers
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    decline_reason: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class _Owner(msgspec.Struct):
    sid: str | None = None   # the decision record's keyed hash of the subscriber


_owner = msgspec.json.Decoder(_Owner)


@requires("channel")
async def agent_reward(request: web.Request) -> web.Response:
    body = decode(await json_body(request), AgentReward)
    assert isinstance(body, AgentReward)
    lang = language(request)
    sid = request.app[DECIDER].subscriber_hash(subscriber_number(request.app, body.subscriber_id, lang))
    if not await decided_for(request, body.event_id, sid):
        raise ApiError(409, "other_subscriber", say(lang, "these offers were made to another caller: nothing was "
                       "recorded. Ask for the next best action for this caller."), "event_id")
    outcome = await _posted_outcome(request, body, lang)
    response = await post_reward(request.app, RewardRequest(event_id=body.event_id, offer_id=body.offer_id,
                                                            outcome=outcome))
    await _note_answer(request, sid, body, outcome)
    return response


async def _posted_outcome(request: web.Request, body: AgentReward, lang: str) -> str:
    """The outcome a reward is posted with: a decline reason's own outcome when configured."""
    if body.decline_reason is None:
        return body.outcome
    if body.outcome != "decline":
        raise ApiError(400, "invalid_field", say(lang, "A reason goes with a decline only."), "decline_reason")
    listed = await request.app[CATALOG].decline_reasons()
    if body.decline_reason not in listed:
        raise ApiError(400, "invalid_field", say(lang, "\u201c{reason}\u201d is not a decline reason of the "
                       "catalog: choose one from the list.", reason=body.decline_reason), "decline_reason")
    return body.decline_reason if body.decline_reason in request.app[SETTINGS].outcomes else "decline"


async def _note_answer(request: web.Request, sid: str, body: AgentReward, outcome: str) -> None:
    """The answer, with the call it was given in (the caller's contact of that event):
    the desktop's history of what was offered and what was said."""
    store = request.app[STORE]
    key = store.keys.ui_contacts(sid)
    said = {"outcome": body.outcome, "posted": outcome, **({"reason": body.decline_reason} if body.decline_reason else {})}
    async with store.redis.pipeline(transaction=True) as pipe:
        for _ in range(5):   # optimistic: another answer of the same call may be written meanwhile
            try:
                await pipe.watch(key)
                for index, raw in enumerate(await pipe.lrange(key, 0, -1)):
                    contact = orjson.loads(raw)
                    if contact.get("event_id") == body.event_id:
                        contact.setdefault("answers", {})[body.offer_id] = said
                        pipe.multi()
                        pipe.lset(key, index, orjson.dumps(contact))
                        await pipe.execute()
                        return
                return
            except WatchError:
                continue


async def decided_for(request: web.Request, event_id: str, sid: str) -> bool:
    """Whether ``event_id`` was decided for the subscriber hashed ``sid``: from the stored
    decision while it is pending, else from that caller's recent contacts on this
    desktop; an event nobody knows is left to the reward handler (404)."""
    store = request.app[STORE]
    key = store.keys.event(event_id)
    record, state = await store.redis.hmget(key, "rec", "st")
    if record is not None:
        try:
            return _owner.decode(record).sid == sid
        except msgspec.MsgspecError:
            return False
    if state is None:
        return True   # unknown event: the reward handler says so
    contacts = await store.redis.lrange(store.keys.ui_contacts(sid), 0, -1)
    return any(orjson.loads(raw).get("event_id") == event_id for raw in contacts)
