"""Accessibility of the pages, measured with axe-core (``axe-playwright-python`` ships
it: nothing is downloaded) in Debian's chromium: the sign-in page, the agent desktop in
every state of a call (empty, caller found, decision shown, error shown, after an
outcome, on a phone) and the marketer dashboard, in English and Russian. Critical and
serious violations fail the test, all of them printed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser import (ADMIN_KEY, KEYS, NEEDS_CHROMIUM, SHOTS, Tab, browser, expect, redis_url,  # noqa: F401
                           service)

pytestmark = NEEDS_CHROMIUM
axe_module = pytest.importorskip("axe_playwright_python.async_playwright",
                                 reason="pip install axe-playwright-python (the test extras)")
BLOCKING = ("critical", "serious")


async def audit(page, state: str) -> list[str]:
    """axe-core's critical and serious violations on the page as it is, one line per node."""
    results = (await axe_module.Axe().run(page)).response
    return [f"{state}: {v['id']} ({v['impact']}): {v['help']} at {', '.join(map(str, node['target']))}: "
            f"{node.get('failureSummary', '').strip()}"
            for v in results["violations"] if v["impact"] in BLOCKING for node in v["nodes"]]


async def _desk_states(page, url: str, lang: str, found: list[str]) -> None:
    """The desktop through one call, audited at every step."""
    await page.goto(f"{url}?lang={lang}")
    await page.wait_for_selector("#lang")
    found += await audit(page, f"{lang} desktop empty")
    await page.screenshot(path=str(SHOTS / f"a11y-{lang}-empty.png"), full_page=True)

    await page.fill("#subscriber", "abc")
    await page.press("#subscriber", "Tab")
    await expect(page.locator("#subscriber-error")).not_to_be_empty()
    assert await page.get_attribute("#subscriber", "aria-invalid") == "true"
    assert "subscriber-error" in (await page.get_attribute("#subscriber", "aria-describedby") or "")
    found += await audit(page, f"{lang} desktop bad number")

    await page.fill("#subscriber", "79001234567")
    await page.press("#subscriber", "Tab")
    await page.wait_for_selector('#caller dd[data-fact="tariff"]')
    assert await page.get_attribute("#subscriber", "aria-invalid") != "true"
    found += await audit(page, f"{lang} desktop caller found")

    await page.click("#decide")   # no reason: the reason field is refused, tied to its message
    await expect(page.locator("#reason-error")).not_to_be_empty()
    assert await page.get_attribute("#reason", "aria-invalid") == "true"
    assert "reason-error" in (await page.get_attribute("#reason", "aria-describedby") or "")
    found += await audit(page, f"{lang} desktop error shown")
    await page.screenshot(path=str(SHOTS / f"a11y-{lang}-error.png"), full_page=True)

    await page.select_option("#reason", "roaming")
    await page.click("#decide")
    await expect(page.locator("#accept-1")).to_be_enabled()
    assert await page.get_attribute("#reason", "aria-invalid") != "true"
    assert await page.evaluate("document.getElementById('result').contains(document.activeElement)")
    found += await audit(page, f"{lang} desktop decision shown")
    await page.screenshot(path=str(SHOTS / f"a11y-{lang}-decision.png"), full_page=True)

    await page.click("#accept-1")
    await expect(page.locator("#outcome-1")).not_to_be_empty()
    await page.click("#later-2")
    await expect(page.locator("#outcome-2")).not_to_be_empty()
    found += await audit(page, f"{lang} desktop after outcome")
    await page.screenshot(path=str(SHOTS / f"a11y-{lang}-outcome.png"), full_page=True)

    await page.click("#new-call")
    assert await page.evaluate("document.activeElement.id") == "subscriber"


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_pages_have_no_serious_accessibility_violations(make_client, browser, lang):
    client = await service(make_client, api_keys=KEYS)
    found: list[str] = []
    context = await browser.new_context(viewport={"width": 1440, "height": 1100}, locale=lang)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    seen = Tab(page)
    try:
        await page.goto(str(client.make_url(f"/ui/login?next=/ui/agent&lang={lang}")))
        await page.wait_for_selector("#key")
        found += await audit(page, f"{lang} sign-in")
        await page.fill("#key", "this-is-not-a-valid-key")
        await page.click("#sign-in")
        await expect(page.locator("#key-error")).not_to_be_empty()
        assert await page.get_attribute("#key", "aria-invalid") == "true"
        found += await audit(page, f"{lang} sign-in refused")
        await page.screenshot(path=str(SHOTS / f"a11y-{lang}-sign-in-refused.png"), full_page=True)
        await page.fill("#key", ADMIN_KEY)
        await page.click("#sign-in")
        await page.wait_for_url(lambda url: urlsplit(url).path == "/ui/agent")

        await _desk_states(page, str(client.make_url("/ui/agent")), lang, found)

        await page.goto(str(client.make_url(f"/ui/?lang={lang}")))
        await page.wait_for_selector('#offers tr[data-offer-id="home_cities"]')
        await page.wait_for_selector("#model dt")
        found += await audit(page, f"{lang} dashboard")
        await page.screenshot(path=str(SHOTS / f"a11y-{lang}-dashboard.png"), full_page=True)
        row = page.locator('#offers tr[data-offer-id="home_cities"]')
        await row.locator('[data-field="value"]').fill("-5")
        await row.locator('[data-action="save"]').click()
        await expect(row.locator('[data-error-for="value"]')).not_to_be_empty()
        found += await audit(page, f"{lang} dashboard refused edit")
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
        await page.wait_for_url(lambda url: urlsplit(url).path == "/ui/agent")
        await page.goto(str(client.make_url(f"/ui/agent?lang={lang}")))
        await page.fill("#subscriber", "79001234567")
        await page.select_option("#reason", "roaming")
        await page.click("#decide")
        await expect(page.locator("#accept-1")).to_be_enabled()
        found += await audit(page, f"{lang} phone decision shown")
        await page.screenshot(path=str(SHOTS / f"a11y-{lang}-phone.png"), full_page=True)
    finally:
        await phone.close()
    assert not found, "axe-core found critical or serious violations:\n" + "\n".join(found)
