"""The agent desktop's answer buttons: an outcome belongs to the call it was offered in.

``POST /ui/api/agent/reward`` carries the event id *and* the caller's number, and is
refused (409 ``other_subscriber``) when that event was decided for someone else: a
screen that still showed the previous caller's offers cannot credit them to the next
one. Everything else is ``POST /v1/reward``'s own handling."""

from __future__ import annotations

from typing import Annotated

import msgspec
import orjson
from aiohttp import web

from bandit.decide.schemas import Identifier, Name, RewardRequest, decode
from bandit.errors import ApiError
from bandit.http.auth import requires
from bandit.http.handlers import json_body, post_reward
from bandit.state import DECIDER, STORE


class AgentReward(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Identifier
    subscriber_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    offer_id: Name
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Owner(msgspec.Struct):
    sid: str | None = None   # the decision record's keyed hash of the subscriber


_owner = msgspec.json.Decoder(_Owner)


@requires("channel")
async def agent_reward(request: web.Request) -> web.Response:
    body = decode(await json_body(request), AgentReward)
    assert isinstance(body, AgentReward)
    subscriber_id = body.subscriber_id.strip()
    if not subscriber_id:
        raise ApiError(400, "invalid_field", "the caller's number is required", "subscriber_id")
    sid = request.app[DECIDER].subscriber_hash(subscriber_id)
    if not await decided_for(request, body.event_id, sid):
        raise ApiError(409, "other_subscriber", "these offers were made to another caller: nothing was recorded. "
                       "Ask for the next best action for this caller.", "event_id")
    return await post_reward(request.app, RewardRequest(event_id=body.event_id, offer_id=body.offer_id,
                                                        outcome=body.outcome))


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
