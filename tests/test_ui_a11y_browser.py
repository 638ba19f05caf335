"""The pages as a person meets them, in Debian's chromium, in English and Russian: the
sign-in page, the agent desktop in every state of a call (empty, bad number, caller
found, error shown, decision shown, after an outcome, on a phone) and the marketer
dashboard (with data, and with a refused edit).

- Accessibility: axe-core (``axe-playwright-python`` ships it: nothing is downloaded)
  finds no critical or serious violation; all of them are printed.
- Words: the rendered DOM (text, aria-label, placeholder, title) has no untranslated
  string: on a Russian page no text made only of Latin words but the allow-list, on an
  English one no Cyrillic. What is marked ``translate="no"`` (ids, rules, profile values
  as stored) and what is marked with its own ``lang`` (the switch "Русский") is skipped."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest

from tests.browser import (ADMIN_KEY, KEYS, NEEDS_CHROMIUM, SHOTS, Tab, browser, expect, redis_url,  # noqa: F401
                           service)

pytestmark = NEEDS_CHROMIUM
axe_module = pytest.importorskip("axe_playwright_python.async_playwright",
                                 reason="pip install axe-playwright-python (the test extras)")
BLOCKING = ("critical", "serious")
# Latin words a Russian page may show alone: the brand, abbreviations Russian uses as they are, p (a probability)
LATIN_ALLOWED = {"nextbest", "SMS", "USSD", "ARPU", "p"}
Check = Callable[[object, str], Awaitable[list[str]]]


async def axe_check(page, state: str) -> list[str]:
    """axe-core's critical and serious violations on the page as it is, one line per node."""
    results = (await axe_module.Axe().run(page)).response
    return [f"{state}: {v['id']} ({v['impact']}): {v['help']} at {', '.join(map(str, node['target']))}: "
            f"{node.get('failureSummary', '').strip()}"
            for v in results["violations"] if v["impact"] in BLOCKING for node in v["nodes"]]


# Every visible text node, every aria-label / placeholder / title, the options and the
# document title; not inside translate="no" nor inside an element of another language.
_STRINGS = """() => {
  const lang = document.documentElement.lang;
  const skip = (el) => el.closest('[translate="no"]') || [...document.querySelectorAll("[lang]")]
    .some((other) => other !== document.documentElement && other.lang !== lang && other.contains(el));
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement, text = node.textContent.trim();
    if (!text || skip(el) || el.closest("script, style")) continue;
    if (el.tagName !== "OPTION" && el.checkVisibility && !el.checkVisibility()) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [placeholder], [title]")) {
    if (skip(el)) continue;
    for (const name of ["aria-label", "placeholder", "title"]) if (el.getAttribute(name)) out.push(el.getAttribute(name));
  }
  return out;
}"""


def untranslated(lang: str, strings: list[str]) -> list[str]:
    """On "ru": strings whose words are all Latin (tokens with digits are numbers or ids,
    not words) beyond the allow-list; on "en": strings with Cyrillic."""
    if lang == "en":
        return [s for s in strings if re.search(r"[\u0400-\u04FF]", s)]
    found = []
    for text in strings:
        if re.search(r"[\u0400-\u04FF]", text):
            continue
        words = [w for w in re.split(r"[\s\-–—·,.:;!?()\[\]{}«»“”\"'/=+%#…]+", text) if re.fullmatch(r"[A-Za-z]+", w)]
        if [w for w in words if w not in LATIN_ALLOWED]:
            found.append(text)
    return found


def words_check(lang: str) -> Check:
    async def check(page, state: str) -> list[str]:
        return [f"{state}: {text!r}" for text in sorted(set(untranslated(lang, await page.evaluate(_STRINGS))))]
    return check


async def _at(page, path: str) -> None:
    await page.wait_for_url(lambda url: urlsplit(url).path == path)


async def _desk(page, url: str, lang: str, check: Check, found: list[str], shots: bool) -> None:
    """The desktop through one call, checked at every step."""
    async def step(state: str, shot: str | None = None) -> None:
        found.extend(await check(page, f"{lang} desktop {state}"))
        if shots and shot:
            await page.screenshot(path=str(SHOTS / f"a11y-{lang}-{shot}.png"), full_page=True)

    await page.goto(f"{url}?lang={lang}")
    await page.wait_for_selector("#lang")
    await page.wait_for_selector("#reason option[value=roaming]", state="attached")   # the catalog's reasons
    await step("empty", "empty")

    await page.fill("#subscriber", "abc")
    await page.press("#subscriber", "Tab")
    await expect(page.locator("#subscriber-error")).not_to_be_empty()
    assert await page.get_attribute("#subscriber", "aria-invalid") == "true"
    assert "subscriber-error" in (await page.get_attribute("#subscriber", "aria-describedby") or "")
    await step("bad number")

    await page.fill("#subscriber", "79001234567")
    await page.press("#subscriber", "Tab")
    await page.wait_for_selector('#caller dd[data-fact="tariff"]')
    assert await page.get_attribute("#subscriber", "aria-invalid") != "true"
    await step("caller found")

    await page.click("#decide")   # no reason: the reason field is refused, tied to its message
    await expect(page.locator("#reason-error")).not_to_be_empty()
    assert await page.get_attribute("#reason", "aria-invalid") == "true"
    assert "reason-error" in (await page.get_attribute("#reason", "aria-describedby") or "")
    assert await page.evaluate("document.activeElement.id") == "reason"
    await step("error shown", "error")

    await page.select_option("#reason", "roaming")
    await page.click("#decide")
    await expect(page.locator("#accept-1")).to_be_enabled()
    assert await page.get_attribute("#reason", "aria-invalid") != "true"
    assert await page.evaluate("document.getElementById('result').contains(document.activeElement)")
    await page.wait_for_selector("#contacts li b")
    await step("decision shown", "decision")

    await page.click("#accept-1")
    await expect(page.locator("#outcome-1")).not_to_be_empty()
    assert await page.evaluate("document.activeElement.id") == "accept-2"   # not <body>: the next offer's answer
    await page.click("#later-2")
    await expect(page.locator("#outcome-2")).not_to_be_empty()
    await page.click("#decline-3")
    await expect(page.locator("#outcome-3")).not_to_be_empty()
    await expect(page.locator("#reward-status")).not_to_be_empty()
    await step("after outcome", "outcome")

    await page.click("#decide")   # the same call again: what was answered is left out, and said so
    await expect(page.locator("#left-out")).not_to_be_empty()
    await step("next decision of the call")

    await page.click("#new-call")
    assert await page.evaluate("document.activeElement.id") == "subscriber"


async def _settle_some_decisions(client) -> None:
    """A few web decisions, answered: the dashboard then has offers, channels and a series to show."""
    for i in range(6):
        decision = await (await client.post("/v1/decide", json={"channel": "web", "subscriber_id": f"+7900000{i:04d}"})).json()
        offer = decision["slots"][0]["offer_id"] if "slots" in decision else decision["offer_id"]
        answer = await client.post("/v1/reward", json={"event_id": decision["event_id"], "offer_id": offer,
                                                       "outcome": "accept" if i % 2 else "decline"})
        assert answer.status in (200, 202), await answer.text()


async def walk(client, browser, lang: str, check: Check, shots: bool = False) -> list[str]:
    """Every page in every state, signed in with a key; what ``check`` found at each."""
    found: list[str] = []
    context = await browser.new_context(viewport={"width": 1440, "height": 1100}, locale=lang)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    seen = Tab(page)
    try:
        await page.goto(str(client.make_url(f"/ui/login?next=/ui/agent&lang={lang}")))
        await page.wait_for_selector("#key")
        found += await check(page, f"{lang} sign-in")
        await page.fill("#key", "this-is-not-a-valid-key")
        await page.click("#sign-in")
        await expect(page.locator("#key-error")).not_to_be_empty()
        assert await page.get_attribute("#key", "aria-invalid") == "true"
        found += await check(page, f"{lang} sign-in refused")
        if shots:
            await page.screenshot(path=str(SHOTS / f"a11y-{lang}-sign-in-refused.png"), full_page=True)
        await page.fill("#key", ADMIN_KEY)
        await page.click("#sign-in")
        await _at(page, "/ui/agent")

        await _desk(page, str(client.make_url("/ui/agent")), lang, check, found, shots)

        await page.goto(str(client.make_url(f"/ui/?lang={lang}")))
        await page.wait_for_selector('#offers tr[data-offer-id="home_cities"]')
        await page.wait_for_selector("#model dt")
        await page.wait_for_selector("#by-channel tbody tr")   # the analytics counted the settled decisions
        found += await check(page, f"{lang} dashboard")
        if shots:
            await page.screenshot(path=str(SHOTS / f"a11y-{lang}-dashboard.png"), full_page=True)
        row = page.locator('#offers tr[data-offer-id="home_cities"]')
        await row.locator('[data-field="value"]').fill("-5")
        await row.locator('[data-action="save"]').click()
        await expect(row.locator('[data-error-for="value"]')).not_to_be_empty()
        assert await row.locator('[data-field="value"]').get_attribute("aria-invalid") == "true"
        found += await check(page, f"{lang} dashboard refused edit")
        assert seen.errors == []
    finally:
        await context.close()

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await phone.new_page()
    page.set_default_timeout(10_000)
    try:
        await page.goto(str(client.make_url("/ui/login?next=/ui/agent")))
        await page.fill("#key", ADMIN_KEY)
        await page.click("#sign-in")
        await _at(page, "/ui/agent")
        await page.goto(str(client.make_url(f"/ui/agent?lang={lang}")))
        await page.fill("#subscriber", "79001234567")
        await page.select_option("#reason", "roaming")
        await page.click("#decide")
        await expect(page.locator("#accept-1")).to_be_enabled()
        found += await check(page, f"{lang} phone decision shown")
        if shots:
            await page.screenshot(path=str(SHOTS / f"a11y-{lang}-phone.png"), full_page=True)
    finally:
        await phone.close()
    return found


async def _service(make_client):
    client = await service(make_client, api_keys=KEYS)
    client.session.headers["X-API-Key"] = ADMIN_KEY   # the API calls of the set-up; the pages sign in themselves
    await _settle_some_decisions(client)
    return client


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_pages_have_no_serious_accessibility_violations(make_client, browser, lang):
    found = await walk(await _service(make_client), browser, lang, axe_check, shots=True)
    assert not found, "axe-core found critical or serious violations:\n" + "\n".join(found)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_pages_have_no_untranslated_strings(make_client, browser, lang):
    found = await walk(await _service(make_client), browser, lang, words_check(lang))
    assert not found, f"untranslated on the {lang} pages:\n" + "\n".join(found)


def test_the_scan_sees_what_it_should():
    """The rule itself: English leftovers on a Russian page, Cyrillic on an English one."""
    assert untranslated("ru", ["Accept", "Принять", "p = 0.38", "SMS", "Pack 300", "3f9a0c1d", "nextbest"]) == \
        ["Accept", "Pack 300"]
    assert untranslated("en", ["Accept", "Принять"]) == ["Принять"]
