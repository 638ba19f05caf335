"""The web UI in a real headless browser (Debian's chromium driven by Playwright), on
the example telecom catalog: the agent serves an offer and it is joined, the marketer
switches an offer off and it leaves the next decision, a bad rule is shown next to its
field, and signing in with keys works (and a wrong key says so). The desktop's call
handling, numbers, outcomes, phone layout and words: test_ui_desk_browser.py."""

from __future__ import annotations

import re

import pytest  # noqa: F401

from tests.harness import wait_until
from tests.browser import (ADMIN_KEY, ENGLISH, KEYS, NEEDS_CHROMIUM, SHOTS, Tab, browser, expect, redis_url,  # noqa: F401
                           service, tab)

pytestmark = NEEDS_CHROMIUM


async def test_agent_serves_an_offer_and_the_reward_is_joined(make_client, tab):
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    await page.fill("#subscriber", "79001234567")
    await page.press("#subscriber", "Tab")
    await page.wait_for_selector('#caller dd[data-fact="tariff"]:has-text("smart")')
    await page.select_option("#reason", "long_distance")
    await page.fill("#reason-text", "звонила подруге в другой город, деньги пропали")
    await page.click("#decide")
    await page.wait_for_selector("#served .offer.served")
    assert await page.locator(".offer").count() == 3
    assert await page.locator("#alternatives .offer").count() == 2
    served = page.locator("#served .offer.served")
    assert (await served.locator(".offer-name").inner_text()).strip()
    assert "p = " in await served.inner_text()
    event_id = await page.get_attribute("#served", "data-event-id")
    assert event_id and "excluded" in await page.inner_text("#excluded")

    await page.screenshot(path=str(SHOTS / "agent-three-slots.png"), full_page=True)
    assert await page.locator("#alternatives .offer.served").count() == 2   # three slots, each pitched
    second = await page.get_attribute("#alternatives .offer.served >> nth=0", "data-offer-id")

    await page.click("#accept-1")
    await page.wait_for_selector('#reward-status[data-status="stored"]')   # slots 2 and 3 still open
    assert "Accepted" in await page.inner_text("#reward-status")
    await expect(page.locator("#outcome-1")).to_have_text("Accepted")
    await page.click("#decline-3")
    await page.click("#accept-2")
    await page.wait_for_selector('#reward-status[data-status="joined"]')   # every slot answered: joined
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert state["state"] == "joined" and [s["rewards"] for s in state["slots"]] == [1, 1, 1]
    assert state["slots"][0]["reward"] > 0 and state["slots"][1]["reward"] > 0 and state["slots"][2]["reward"] == 0
    await page.wait_for_selector("#contacts li:has-text('accepted')")
    await page.screenshot(path=str(SHOTS / "agent-answered.png"), full_page=True)

    first = state["slots"][0]["offer_id"]
    await page.click("#decide")   # the same call, asked again: what was just bought is owned now
    await expect(page.locator("#served")).not_to_have_attribute("data-event-id", event_id)
    await page.wait_for_selector("#served .offer")
    shown = [await page.get_attribute("#served .offer >> nth=0", "data-offer-id")]
    shown += [await c.get_attribute("data-offer-id") for c in await page.locator("#alternatives .offer").all()]
    assert first not in shown and second not in shown, shown
    assert "(already has it)" in await page.inner_text("#excluded")
    names = {o["id"]: o["name"] for o in (await (await client.get("/v1/offers")).json())["offers"]}
    await expect(page.locator("#caller .chip", has_text=names[first])).to_have_count(1)   # now one of the services
    await page.screenshot(path=str(SHOTS / "agent-next-decision.png"), full_page=True)
    assert tab.errors == []


async def test_marketer_switches_an_offer_off_and_it_leaves_the_next_decision(make_client, tab):
    client = await service(make_client, **ENGLISH)
    decide = {"channel": "contact_center", "subscriber_id": "+79001234567", "context": {"reason": "long_distance"},
              "k": 9, "explain": True}
    before = await (await client.post("/v1/decide", json=decide)).json()
    assert "balance_control" not in [e["offer_id"] for e in before["excluded"]]   # eligible

    page = tab.page
    await page.goto(str(client.make_url("/ui/")))
    row = page.locator('#offers tr[data-offer-id="balance_control"]')
    await row.locator('[data-field="enabled"]').click()
    await row.page.wait_for_selector('#offers tr[data-offer-id="balance_control"] .status:has-text("saved")')
    assert not await page.locator('#offers tr[data-offer-id="balance_control"] [data-field="enabled"]').is_checked()

    after = await (await client.post("/v1/decide", json={**decide, "subscriber_id": "+79007654321"})).json()
    assert "balance_control" not in [s["offer_id"] for s in after["slots"]]
    assert {"offer_id": "balance_control", "reason": "disabled"}.items() <= \
        next(e for e in after["excluded"] if e["offer_id"] == "balance_control").items()
    # the dashboard counts what was decided once it is settled
    for slot in after["slots"]:   # every slot answered: the decision is settled
        await client.post("/v1/reward", json={"event_id": after["event_id"], "offer_id": slot["offer_id"],
                                              "outcome": "accept" if slot["slot"] == 1 else "decline"})
    await page.wait_for_selector("#by-offer tbody tr", timeout=15_000)
    assert tab.errors == []


async def test_a_bad_rule_is_shown_next_to_its_field(make_client, tab):
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/")))
    row = page.locator('#offers tr[data-offer-id="home_cities"]')
    await row.locator('[data-field="eligibility"]').fill('tariff in ["super", ')
    await row.locator('[data-action="save"]').click()
    error = row.locator('[data-error-for="eligibility"]')
    await expect(error).to_have_text(re.compile(r"\S"))   # no string-evaluated JS: the page's CSP forbids eval
    assert "expected" in (await error.inner_text()).lower()
    assert "invalid" in (await row.locator('[data-field="eligibility"]').get_attribute("class"))
    stored = await (await client.get("/v1/offers/home_cities")).json()
    assert stored["eligibility"].startswith('tariff in ["super", "smart", "basic"]')   # unchanged

    await row.locator('[data-field="caps.accepts_per_day"]').fill("-3")
    await row.locator('[data-field="eligibility"]').fill('tariff in ["super", "smart"]')
    await row.locator('[data-action="save"]').click()
    await expect(row.locator('[data-error-for="caps.accepts_per_day"]')).to_have_text(re.compile(r"\S"))
    said = await row.locator('[data-error-for="caps.accepts_per_day"]').inner_text()
    assert "whole number" in said and "Expected" not in said, said   # a marketer's words, not the validator's
    assert await row.locator('[data-field="caps.accepts_per_day"]').get_attribute("aria-invalid") == "true"
    assert tab.errors == []


async def test_sign_in_with_keys(make_client, tab):
    client = await service(make_client, api_keys=KEYS, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/")))
    await page.wait_for_url("**/ui/login?next=/ui/")
    await page.fill("#key", "this-is-not-a-valid-key")
    await page.click("#sign-in")
    await page.wait_for_selector("#key-error:has-text('not valid')")
    assert "/ui/login" in page.url

    await page.fill("#key", ADMIN_KEY)
    await page.click("#sign-in")
    await page.wait_for_url("**/ui/")
    await page.wait_for_selector(".topbar .who:has-text('signed in as marketing')")
    await page.wait_for_selector('#offers tr[data-offer-id="home_cities"]')
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "nextbest_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert await page.evaluate("document.cookie") == ""   # invisible to scripts

    await page.click("#logout")
    await page.wait_for_url("**/ui/login")
    await page.goto(str(client.make_url("/ui/agent")))
    await wait_until(lambda: _at_login(page), timeout=10, what="redirect to sign-in")
    assert tab.errors == []


async def _at_login(page) -> bool:
    return "/ui/login" in page.url
