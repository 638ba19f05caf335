"""The agent desktop through a contact-center shift, in a real headless browser: a
decision belongs to its call, numbers are read as E.164 (and a bad one makes no
decision), the screen-pop, accept / decline / not now and what the next decision of the
call leaves out, the phone layout, and the words an agent reads."""

from __future__ import annotations

import re

import pytest  # noqa: F401
import yaml

from tests.harness import read_lines, wait_until
from tests.test_ui import EXAMPLES
from tests.browser import (ADMIN_KEY, ENGLISH, KEYS, NEEDS_CHROMIUM, SHOTS, Tab, browser, expect, redis_url,  # noqa: F401
                           service, tab)

pytestmark = NEEDS_CHROMIUM


async def _decide_for(page, number: str, reason: str = "long_distance") -> str:
    await page.fill("#subscriber", number)
    await page.press("#subscriber", "Tab")
    await page.select_option("#reason", reason)
    before = await page.get_attribute("#served", "data-event-id")
    await page.click("#decide")
    await expect(page.locator("#accept-1")).to_be_enabled()
    event_id = await page.get_attribute("#served", "data-event-id")
    assert event_id and event_id != before
    return event_id


async def test_a_decision_belongs_to_its_call(make_client, tab):
    """Another number, a failed decision or "New call" takes the previous caller's offers
    (and their buttons) off the screen; nothing is credited to the first caller."""
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    first = await _decide_for(page, "79001234567")

    await page.fill("#subscriber", "79007654321")   # the next caller, typed over the number
    await expect(page.locator("#accept-1")).to_have_count(0)
    await expect(page.locator("#served")).to_contain_text("previous caller")
    await expect(page.locator("#caller")).not_to_contain_text("smart")   # not the first caller's card
    await page.screenshot(path=str(SHOTS / "agent-number-changed.png"), full_page=True)
    assert (await (await client.get(f"/v1/events/{first}")).json())["rewards"] == 0

    await _decide_for(page, "79007654321")
    await page.select_option("#reason", "")   # the next decision of this call fails validation
    await page.click("#decide")
    await expect(page.locator("#reason-error")).not_to_be_empty()
    await expect(page.locator("#accept-1")).to_have_count(0)
    await expect(page.locator("#served")).not_to_have_attribute("data-event-id", re.compile(r"."))

    await _decide_for(page, "79007654321")
    await page.click("#new-call")
    await expect(page.locator(".offer")).to_have_count(0)
    assert await page.input_value("#subscriber") == ""
    assert await page.evaluate("document.activeElement.id") == "subscriber"
    await expect(page.locator("#caller")).to_contain_text("Enter the number")
    await page.screenshot(path=str(SHOTS / "agent-new-call.png"), full_page=True)
    assert tab.errors == []


async def test_numbers_are_read_as_e164_and_a_bad_one_makes_no_decision(make_client, tab):
    """8 987…, 7987… and +7 987… are one caller; "abc" is refused inline with no decision;
    the telephony's screen-pop opens the call filled in."""
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    for typed in ("8 900 123-45-67", "79001234567", "+7 900 123 45 67"):
        await page.fill("#subscriber", typed)
        await page.press("#subscriber", "Tab")
        await expect(page.locator("#caller-number")).to_have_text("+79001234567")
        await expect(page.locator('#caller dd[data-fact="tariff"]')).to_have_text("smart")
    await page.select_option("#reason", "roaming")
    await page.click("#decide")
    await expect(page.locator("#accept-1")).to_be_enabled()
    decisions = (await (await client.get("/v1/stats")).json())["counters"]["decisions"]

    await page.fill("#subscriber", "abc")
    await page.press("#subscriber", "Tab")
    await expect(page.locator("#subscriber-error")).to_contain_text("not a phone number")
    await page.click("#decide")
    await expect(page.locator("#subscriber-error")).to_contain_text("not a phone number")
    await expect(page.locator(".offer")).to_have_count(0)
    await page.screenshot(path=str(SHOTS / "agent-bad-number.png"), full_page=True)
    assert (await (await client.get("/v1/stats")).json())["counters"]["decisions"] == decisions   # none made

    await page.goto(str(client.make_url("/ui/agent?msisdn=89007654321&reason=roaming")))
    await expect(page.locator("#caller-number")).to_have_text("+79007654321")
    assert await page.input_value("#subscriber") == "89007654321"
    assert await page.input_value("#reason") == "roaming"
    await page.click("#decide")
    await expect(page.locator("#accept-1")).to_be_enabled()
    await page.screenshot(path=str(SHOTS / "agent-screen-pop.png"), full_page=True)
    assert tab.errors == []


async def test_outcomes_of_a_call_and_what_the_next_decision_leaves_out(make_client, tab):
    """Accept, decline and "not now" (no reward) each mark their card; asked again in the
    same call, the desktop says which offers it left out because they were just answered,
    and marks any answered offer that comes back."""
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    event_id = await _decide_for(page, "79001234567")
    names = {slot: (await page.inner_text(f'.offer[data-slot="{slot}"] .offer-name')).strip() for slot in (1, 2, 3)}
    ids = {slot: await page.get_attribute(f'.offer[data-slot="{slot}"]', "data-offer-id") for slot in (1, 2, 3)}

    await page.click("#later-3")
    await expect(page.locator("#outcome-3")).to_have_text("Not now: call back")
    await expect(page.locator("#reward-status")).to_contain_text("nothing is recorded")
    await page.click("#accept-1")
    await expect(page.locator("#outcome-1")).to_have_text("Accepted")
    await page.click("#decline-2")
    await expect(page.locator("#outcome-2")).to_have_text("Declined")
    assert "said-accept" in await page.get_attribute('.offer[data-slot="1"]', "class")
    assert "said-later" in await page.get_attribute('.offer[data-slot="3"]', "class")
    await page.screenshot(path=str(SHOTS / "agent-outcomes.png"), full_page=True)
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert [s["rewards"] for s in state["slots"]] == [1, 1, 0]   # "not now" posted nothing

    await page.click("#decide")   # the same call, asked again
    await expect(page.locator("#served")).not_to_have_attribute("data-event-id", event_id)
    await expect(page.locator("#left-out")).to_contain_text(f"just accepted: {names[1]}")
    shown = {await c.get_attribute("data-offer-id"): c for c in await page.locator(".offer").all()}
    assert ids[1] not in shown
    if ids[2] in shown:   # no cool-down for it: offered again, marked
        await expect(shown[ids[2]].locator(".earlier")).to_contain_text("declined earlier in this call")
    elif f"{names[2]} (declined recently" in await page.inner_text("#excluded"):   # its cool-down left it out
        await expect(page.locator("#left-out")).to_contain_text(f"just declined: {names[2]}")
    else:   # merely not among the three best this time
        assert names[2] not in await page.inner_text("#left-out")
    if ids[3] in shown:
        await expect(shown[ids[3]].locator(".earlier")).to_contain_text("not now")
    await page.screenshot(path=str(SHOTS / "agent-left-out.png"), full_page=True)
    assert tab.errors == []


@pytest.mark.parametrize("lang", ["en", "ru"])   # ru: the telecom example's own; its words are longer
@pytest.mark.parametrize("keys", [False, True], ids=["open", "signed-in"])
async def test_the_desktop_on_a_phone(make_client, browser, keys, lang):
    """390×844: nothing scrolls sideways, the top bar takes one or two lines (signed in
    too, with "Sign out"), and after a decision the result is scrolled into view and has
    the focus."""
    client = await service(make_client, ui_language=lang, **({"api_keys": KEYS} if keys else {}))
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    seen = Tab(page)
    try:
        if keys:
            await page.goto(str(client.make_url("/ui/login?next=/ui/agent")))
            await page.fill("#key", ADMIN_KEY)
            await page.click("#sign-in")
            await page.wait_for_url("**/ui/agent")
        else:
            await page.goto(str(client.make_url("/ui/agent")))
        await page.wait_for_selector(".topbar nav")
        await page.screenshot(path=str(SHOTS / f"agent-phone-{lang}-{'signed-in' if keys else 'empty'}.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        line = await page.evaluate("parseFloat(getComputedStyle(document.querySelector('.topbar nav a')).lineHeight)"
                                   " || 20")
        bar = await page.locator("#topbar").bounding_box()
        assert bar["height"] <= 2 * line + 32, bar   # one or two lines of links, plus the padding

        await page.fill("#subscriber", "+7 900 123 45 67")
        await page.press("#subscriber", "Tab")
        await page.wait_for_selector('#caller dd[data-fact="tariff"]')
        await page.select_option("#reason", "roaming")
        await page.click("#decide")
        await expect(page.locator("#accept-1")).to_be_enabled()
        await page.screenshot(path=str(SHOTS / f"agent-phone-{lang}-result.png"))
        await expect(page.locator("#served .offer")).to_be_in_viewport()
        assert await page.evaluate("document.getElementById('result').contains(document.activeElement)")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=str(SHOTS / f"agent-phone-{lang}-full.png"), full_page=True)
        assert seen.errors == []
    finally:
        await context.close()


async def test_words_for_agents(make_client, browser):
    """What the agent reads: labels, not codes; no event ids; 140, not 140.0; Moscow; the
    page's own locale for dates (an English page in a German browser); human messages for
    a note too long and an answer too late."""
    client = await service(make_client, reward_wait_seconds=1.0, **ENGLISH)
    context = await browser.new_context(viewport={"width": 1440, "height": 1100}, locale="de-DE")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    seen = Tab(page)
    try:
        await page.goto(str(client.make_url("/ui/agent")))
        await page.fill("#reason-text", "x" * 1001)
        await _decide_for_typed(page, "79001234567", "long_distance")
        await expect(page.locator("#reason_text-error")).to_contain_text("too long")
        assert "Expected" not in await page.inner_text("body")

        await page.fill("#reason-text", "")
        await _decide_for(page, "79001234567")
        await page.wait_for_selector("#contacts li b")
        await expect(page.locator("#contacts li b").first).to_have_text("Long-distance calls are expensive")
        when = await page.inner_text("#contacts li .muted.small >> nth=0")
        assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", when), when   # "Dec 7, 2026, 11:35 AM", not 7.12.2026
        await expect(page.locator('#caller dd[data-fact="region"]')).to_have_text("Moscow")
        await expect(page.locator('#caller dd[data-fact="balance"]')).to_have_text("120")
        usage = await page.inner_text("#caller table")
        assert "140" in usage and "140.0" not in usage and ".0" not in usage, usage
        assert "(already has it)" in await page.inner_text("#excluded")
        text = await page.inner_text("body")
        assert not re.search(r"\b[0-9a-f]{32}\b", text), "an event id on screen"
        assert "long_distance" not in text
        await page.screenshot(path=str(SHOTS / "agent-words.png"), full_page=True)

        await page.wait_for_timeout(2500)   # past the 1 s reward wait: the decision is settled
        await page.click("#accept-1")
        await expect(page.locator("#reward-status")).to_contain_text("Too late to record this answer")
        assert not re.search(r"[0-9a-f]{32}", await page.inner_text("#reward-status"))
        await expect(page.locator("#accept-2")).to_be_disabled()   # the whole decision is closed
        await page.screenshot(path=str(SHOTS / "agent-too-late.png"), full_page=True)
        assert seen.errors == []
    finally:
        await context.close()


async def _decide_for_typed(page, number: str, reason: str) -> None:
    """Ask for a decision that is expected to be refused."""
    await page.fill("#subscriber", number)
    await page.select_option("#reason", reason)
    await page.click("#decide")


async def test_a_less_likely_offer_says_what_the_model_prefers(make_client, tab):
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    for i in range(12):   # squarecb on a cold model: some slot soon draws an offer it does not favour
        await page.fill("#subscriber", f"7900555{i:04d}")
        await _decide_for(page, f"7900555{i:04d}", "roaming")
        prefers = page.locator(".offer .why li", has_text="The model prefers")
        if await prefers.count():
            break
    else:
        raise AssertionError("no decision drew an offer the model does not favour")
    line = await prefers.first.inner_text()
    assert "shown less often" in line and "to keep learning" in line, line
    await prefers.first.scroll_into_view_if_needed()
    await page.screenshot(path=str(SHOTS / "agent-model-prefers.png"), full_page=True)
    assert tab.errors == []


async def test_the_desktop_in_russian(make_client, tab):
    """?lang=ru (remembered by the browser): the page, the service's explanations and
    refusals, numbers and dates in Russian; the switch in the top bar goes back to English."""
    client = await service(make_client, **ENGLISH)
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent?lang=ru")))
    await expect(page.locator("h2").first).to_have_text("Входящий звонок")
    await page.fill("#subscriber", "abc")
    await page.press("#subscriber", "Tab")
    await expect(page.locator("#subscriber-error")).to_contain_text("не номер телефона")
    await page.fill("#subscriber", "")
    await _decide_for(page, "8 900 123-45-67", "roaming")
    await expect(page.locator("#accept-1")).to_have_text("Принять")
    why = await page.inner_text("#served .why")
    assert re.search(r"[а-яА-Я]", why) and "model" not in why, why
    await page.wait_for_selector("#contacts li b")
    await expect(page.locator("#contacts li b").first).to_have_text("Поездка за границу / роуминг")
    assert re.search(r"[а-я]{3}", await page.inner_text("#contacts li .muted.small >> nth=0"))   # "7 дек. 2026 г."
    await expect(page.locator('#caller dd[data-fact="region"]')).to_have_text("Moscow")
    text = await page.inner_text("main")
    for english in ("Accept", "Decline", "Next best action", "Chosen among", "Tariff", "Usage"):
        assert english not in text, english
    await page.click("#later-2")
    await expect(page.locator("#outcome-2")).to_have_text("Не сейчас: перезвонить")
    await page.screenshot(path=str(SHOTS / "agent-russian.png"), full_page=True)
    # every translation fills in the same values as its English original
    mismatched = await page.evaluate("""Object.entries(NB_WORDS.ru).filter(([en, ru]) =>
        JSON.stringify((en.match(/\\{\\w+\\}/g) || []).sort()) !== JSON.stringify((ru.match(/\\{\\w+\\}/g) || []).sort()))""")
    assert mismatched == []

    await page.goto(str(client.make_url("/ui/agent")))   # remembered
    await expect(page.locator("h2").first).to_have_text("Входящий звонок")
    await page.click("#lang")
    await expect(page.locator("h2").first).to_have_text("Incoming call")
    assert tab.errors == []


FITS = {"en": "fits the call reason \u201c{}\u201d", "ru": "подходит к причине звонка «{}»"}
EXPECTS = {"en": "Expected: {}% of callers like this accept", "ru": "Ожидаем: согласятся {}% таких абонентов"}
COLD = {"en": "the catalog's estimate: nothing learned yet", "ru": "оценка каталога: модель ещё не обучалась"}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_each_card_gives_the_pitch_and_the_logged_probability(make_client, tab, data_dir, lang):
    """What helps the pitch (issue 22, problem 7): each card shows the offer's pitch and
    terms from the catalog in the page's language, says when it fits the call reason (by
    its label, only then), and its probability is the one the decision log holds."""
    client = await service(make_client, ui_language=lang)
    catalog = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text(encoding="utf-8"))
    texts = {o["id"]: {**o, **o.get("locales", {}).get(lang, {})} for o in catalog["offers"]}
    label = catalog["reasons"]["roaming"][lang]
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    event_id = await _decide_for(page, "79001234567", "roaming")
    shown = {}
    for slot in (1, 2, 3):
        card = page.locator(f'.offer[data-slot="{slot}"]')
        offer = texts[await card.get_attribute("data-offer-id")]
        shown[slot] = (offer["id"], await card.locator(".badge", has_text="p = ").inner_text())
        await expect(card.locator(".offer-name")).to_have_text(offer["name"])
        await expect(card.locator(".pitch")).to_have_text(offer["description"])
        await expect(card.locator(".terms")).to_contain_text(offer["terms"])
        fits = card.locator(".why li", has_text=FITS[lang].format(label))
        await expect(fits).to_have_count(1 if offer["category"] == "roaming" else 0)
        # what the model expects: a cold model's card gives the catalog's chance of a yes, and says so
        share = float(await card.locator(".expect").get_attribute("data-acceptance"))
        assert share == pytest.approx(offer.get("prior", 0.1))
        await expect(card.locator(".expect")).to_contain_text(EXPECTS[lang].format(round(share * 100)))
        await expect(card.locator(".expect")).to_contain_text(COLD[lang])
    for slot in (1, 2, 3):
        await page.click(f"#decline-{slot}")
    await page.wait_for_selector('#reward-status[data-status="joined"]')

    async def logged():
        return [line for line in read_lines(data_dir / "decisions") if line.get("EventId") == event_id]
    (line,) = await wait_until(logged, timeout=60, what="the decision in the log")
    actions = line["_nb"]["offers"]   # in c._multi order
    for outcome in line["_outcomes"]:
        offer_id, badge = shown[int(outcome["_id"])]
        assert actions[outcome["_a"][0]] == offer_id
        p = outcome["_p"][0]   # as the page writes it: 2 decimals, 3 from 0.995 up
        assert badge == f"p = {p:.3f}" if p >= 0.995 else f"p = {p:.2f}", (badge, outcome)
    await page.screenshot(path=str(SHOTS / f"agent-pitch-{lang}.png"), full_page=True)
    assert tab.errors == []


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_decline_can_say_why_and_the_call_history_keeps_it(make_client, tab, lang):
    """Each card's Decline may say why (the catalog's decline reasons, in the page's
    language); the caller's recent contacts then list what was said to each offer of the call."""
    client = await service(make_client, ui_language=lang)
    labels = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text(encoding="utf-8"))["decline_reasons"]
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    event_id = await _decide_for(page, "79001234567", "roaming")
    options = await page.locator("#why-1 option").all_inner_texts()
    assert options[1:] == [labels[code][lang] for code in labels]
    await page.select_option("#why-1", "too_expensive")
    await page.click("#decline-1")
    await expect(page.locator("#outcome-1")).not_to_be_empty()
    await expect(page.locator("#why-1")).to_be_disabled()
    await page.click("#decline-2")   # no reason given: a plain decline
    await page.click("#accept-3")
    await page.wait_for_selector('#reward-status[data-status="joined"]')
    name = await page.locator('.offer[data-slot="1"] .offer-name').inner_text()
    history = page.locator("#contacts li").first
    await expect(history.locator(".answer")).to_have_count(3)
    await expect(history).to_contain_text(f"{name}: ")
    await expect(history).to_contain_text(labels["too_expensive"][lang])
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert state["state"] == "joined" and state["slots"][2]["reward"] > 0
    await page.screenshot(path=str(SHOTS / f"agent-decline-reason-{lang}.png"), full_page=True)
    assert tab.errors == []


async def test_not_now_is_posted_as_its_outcome_when_the_settings_have_one(make_client, tab):
    """With a `not_now` outcome configured, "Not now / call back" is an answer like the others:
    posted with its reward (times the value, the example's objective), the card then closed."""
    client = await service(make_client, **ENGLISH, outcomes={"accept": 1.0, "decline": 0.0, "not_now": 0.25})
    page = tab.page
    await page.goto(str(client.make_url("/ui/agent")))
    event_id = await _decide_for(page, "79001234567", "roaming")
    value = float((await page.locator('.offer[data-slot="1"] .value').inner_text()).split()[-1].replace(",", ""))
    await page.click("#later-1")
    await expect(page.locator("#outcome-1")).to_have_text("Not now: call back")
    await expect(page.locator("#accept-1")).to_be_disabled()
    await expect(page.locator("#reward-status")).to_have_attribute("data-status", "stored")
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert state["slots"][0]["rewards"] == 1 and state["slots"][0]["reward"] == pytest.approx(0.25 * value)
    await expect(page.locator("#contacts li").first.locator(".answer")).to_contain_text("not now")
    assert tab.errors == []
