"""docs/api.md's table "How a request is answered, by the event's state", row by row:
the rows are read from the markdown, each is driven on a real service (real Redis, real
VW) in each mode it names, and the answer must be the row's status and code. A row
without a driver here, or a driver without its row, fails: the table and the service
cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OFFERS
from tests.harness import wait_until

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TITLE = "### How a request is answered, by the event's state"
THREE_SLOTS = {"slots": {"contact_center": 3}}   # contact_center shows 3 of the 4 offers
SHORT_WAIT = {"reward_wait_seconds": 0.3}


@dataclass(frozen=True)
class Row:
    request: str
    mode: str
    event: str
    status: int
    answer: str


def table_rows() -> list[Row]:
    section = API_MD.read_text().split(TITLE, 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3].isdigit():
            rows.append(Row(cells[0], cells[1].strip("`"), cells[2], int(cells[3]), cells[4].strip("`")))
    return rows


ROWS = table_rows()


# -- the steps the drivers are made of ----------------------------------------------------
async def decide(client, *, defer: bool = False, channel: str = "web") -> str:
    response = await client.post("/v1/decide", json={"channel": channel, "subscriber_id": "79001234567",
                                                     "offers": OFFERS, "defer_activation": defer})
    assert response.status == 200, await response.text()
    return (await response.json())["event_id"]


async def reward(client, event_id: str, **body: Any):
    return await client.post("/v1/reward", json={"event_id": event_id, "reward": 1.0, **body})


async def accepted(client, event_id: str, **body: Any) -> None:
    response = await reward(client, event_id, **body)
    assert response.status in (200, 202), await response.text()


async def activate(client, event_id: str):
    return await client.post(f"/v1/events/{event_id}/activate")


async def settled(client, event_id: str, state: str) -> None:
    async def reached() -> bool:
        return (await (await client.get(f"/v1/events/{event_id}")).json())["state"] == state
    await wait_until(reached, timeout=10, what=f"event {event_id} {state}")


async def shown(client, event_id: str) -> list[str]:
    return [s["offer_id"] for s in (await (await client.get(f"/v1/events/{event_id}")).json())["slots"]]


# -- one driver per row: the settings it needs and the request it answers ------------------
Driver = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    run: Driver
    settings: dict[str, Any] = field(default_factory=dict)


async def _unknown_reward(client):
    return await reward(client, "never-decided")


async def _offer_not_shown(client):
    event_id = await decide(client, channel="contact_center")
    offered = await shown(client, event_id)
    left_out = next(o["id"] for o in OFFERS if o["id"] not in offered)
    return await reward(client, event_id, offer_id=left_out)


async def _slot_past(client):
    return await reward(client, await decide(client, channel="contact_center"), slot=4)


async def _defaulted(client):
    event_id = await decide(client)
    await settled(client, event_id, "defaulted")
    return await reward(client, event_id)


async def _dropped(client):
    event_id = await decide(client, defer=True)
    await settled(client, event_id, "dropped")
    return await reward(client, event_id)


async def _rid_same_body(client):
    event_id = await decide(client)
    await accepted(client, event_id, reward_id="r1")
    return await reward(client, event_id, reward_id="r1")


async def _rid_other_body(client):
    event_id = await decide(client)
    await accepted(client, event_id, reward_id="r1")
    return await reward(client, event_id, reward_id="r1", reward=0.5)


async def _first_joined(client):
    event_id = await decide(client)
    await accepted(client, event_id)
    await settled(client, event_id, "joined")
    return await reward(client, event_id, reward=0.0)


async def _slot_already_rewarded(client):
    event_id = await decide(client, channel="contact_center")
    await accepted(client, event_id, slot=1)
    return await reward(client, event_id, slot=1, reward=0.0)


async def _one_slot(client):
    return await reward(client, await decide(client))


async def _last_slot(client):
    event_id = await decide(client, channel="contact_center")
    await accepted(client, event_id, slot=1)
    await accepted(client, event_id, slot=2)
    return await reward(client, event_id, slot=3)


async def _other_slots_wait(client):
    return await reward(client, await decide(client, channel="contact_center"), slot=2)


async def _deferred_not_activated(client):
    return await reward(client, await decide(client, defer=True))


async def _sum_joined(client):
    event_id = await decide(client)
    await accepted(client, event_id)
    await settled(client, event_id, "joined")
    return await reward(client, event_id)


async def _sum_pending(client):
    event_id = await decide(client)
    await accepted(client, event_id)
    return await reward(client, event_id)


async def _unknown_activation(client):
    return await activate(client, "never-decided")


async def _not_deferred(client):
    return await activate(client, await decide(client))


async def _activated_twice(client):
    event_id = await decide(client, defer=True)
    assert (await activate(client, event_id)).status == 200
    return await activate(client, event_id)


async def _dropped_activation(client):
    event_id = await decide(client, defer=True)
    await settled(client, event_id, "dropped")
    return await activate(client, event_id)


async def _deferred_no_reward(client):
    return await activate(client, await decide(client, defer=True))


async def _deferred_rewarded(client):
    event_id = await decide(client, defer=True)
    await accepted(client, event_id)
    return await activate(client, event_id)


CASES: dict[tuple[str, str, str], Case] = {
    ("reward", "any", "never decided, or past retention"): Case(_unknown_reward),
    ("reward", "any", "`offer_id` not among the decision's slots"): Case(_offer_not_shown, THREE_SLOTS),
    ("reward", "any", "`slot` past the decision's slots"): Case(_slot_past, THREE_SLOTS),
    ("reward", "any", "defaulted (no reward by the deadline)"): Case(_defaulted, SHORT_WAIT),
    ("reward", "any", "dropped (deferred, never activated)"): Case(_dropped, SHORT_WAIT),
    ("reward", "any", "`reward_id` already counted for the event, same body"): Case(_rid_same_body),
    ("reward", "any", "`reward_id` already counted for the event, another body"): Case(_rid_other_body),
    ("reward", "first", "joined"): Case(_first_joined),
    ("reward", "first", "pending, this slot already rewarded"): Case(_slot_already_rewarded, THREE_SLOTS),
    ("reward", "first", "pending, one slot, not deferred"): Case(_one_slot),
    ("reward", "first", "pending, the other slots already rewarded"): Case(_last_slot, THREE_SLOTS),
    ("reward", "first", "pending, other slots still without a reward"): Case(_other_slots_wait, THREE_SLOTS),
    ("reward", "first", "pending, deferred, not activated"): Case(_deferred_not_activated),
    ("reward", "sum", "joined at its deadline with the sum"): Case(_sum_joined, SHORT_WAIT),
    ("reward", "sum", "pending"): Case(_sum_pending),
    ("reward", "sum", "pending, deferred, not activated"): Case(_deferred_not_activated),
    ("activate", "any", "never decided, or past retention"): Case(_unknown_activation),
    ("activate", "any", "not deferred"): Case(_not_deferred),
    ("activate", "any", "deferred, already activated"): Case(_activated_twice),
    ("activate", "any", "deferred, dropped at its deadline"): Case(_dropped_activation, SHORT_WAIT),
    ("activate", "any", "deferred, pending, no reward"): Case(_deferred_no_reward),
    ("activate", "first", "deferred, pending, every slot rewarded"): Case(_deferred_rewarded),
    ("activate", "sum", "deferred, pending, a reward accumulated"): Case(_deferred_rewarded),
}


def test_every_row_has_a_driver_and_every_driver_a_row():
    assert len(ROWS) >= 20, "the table was not found in docs/api.md"
    documented = [(row.request, row.mode, row.event) for row in ROWS]
    assert len(set(documented)) == len(documented), "a row appears twice"
    assert sorted(set(documented) - set(CASES)) == [], "rows without a driver in this test"
    assert sorted(set(CASES) - set(documented)) == [], "drivers of rows docs/api.md no longer has"


RUNS = [pytest.param(row, mode, id=f"{row.request}-{mode}-{row.event}")
        for row in ROWS for mode in (("first", "sum") if row.mode == "any" else (row.mode,))]


@pytest.mark.parametrize("row, mode", RUNS)
async def test_the_service_answers_as_the_table_says(make_client, row: Row, mode: str):
    case = CASES[(row.request, row.mode, row.event)]
    client = await make_client(reward_aggregation=mode, **case.settings)
    response = await case.run(client)
    body = await response.json()
    assert response.status == row.status, body
    if response.status < 300:
        assert body["status"] == row.answer, body
        if row.request == "reward":
            assert body["duplicate"] is (row.answer == "duplicate"), body
    else:
        assert body["error"]["code"] == row.answer, body
