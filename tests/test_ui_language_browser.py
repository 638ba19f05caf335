"""Which language the pages open in, in a real headless browser: ?lang, else the switch
the browser remembers, else the deployment's ``ui_language`` — Russian in the shipped
telecom example, whatever the browser's own language; ``browser`` follows
navigator.languages (the first of Russian and English, else English)."""

from __future__ import annotations

import re

import pytest

from tests.browser import (ADMIN_KEY, KEYS, NEEDS_CHROMIUM, SHOTS, Tab, browser, expect, redis_url,  # noqa: F401
                           service)

pytestmark = NEEDS_CHROMIUM

CALL = {"en": "Incoming call", "ru": "Входящий звонок"}


async def _context(browser, locale: str, languages: list[str] | None = None):
    """A browser whose own language is ``locale`` (and navigator.languages, if given)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1100}, locale=locale)
    if languages is not None:
        await context.add_init_script(f"Object.defineProperty(navigator, 'languages', {{get: () => {languages!r}}});")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return context, page, Tab(page)


async def _opens_in(page, lang: str) -> None:
    await expect(page.locator("#call-title")).to_have_text(CALL[lang])
    assert await page.evaluate("document.documentElement.lang") == lang


async def test_the_telecom_example_opens_in_russian_in_an_english_browser(make_client, browser):
    """The example's settings as shipped (ui_language: ru), an en-US browser, no ?lang and
    nothing remembered: sign-in, the desktop (with the service's own words) and the
    dashboard are Russian."""
    client = await service(make_client, api_keys=KEYS)
    context, page, seen = await _context(browser, "en-US")
    try:
        await page.goto(str(client.make_url("/ui/agent")))
        await page.wait_for_url("**/ui/login**")
        await expect(page.locator("#sign-in")).to_have_text("Войти")
        assert await page.evaluate("document.documentElement.lang") == "ru"
        await page.screenshot(path=str(SHOTS / "ru-default-sign-in.png"), full_page=True)
        await page.fill("#key", ADMIN_KEY)
        await page.click("#sign-in")
        await page.wait_for_url("**/ui/agent")
        await _opens_in(page, "ru")
        await expect(page.locator("#lang")).to_have_text("English")
        await page.screenshot(path=str(SHOTS / "ru-default-agent-empty.png"), full_page=True)

        await page.fill("#subscriber", "abc")   # the service's refusal follows the page's language
        await page.press("#subscriber", "Tab")
        await expect(page.locator("#subscriber-error")).to_contain_text("не номер телефона")
        await page.fill("#subscriber", "8 900 123-45-67")
        await page.press("#subscriber", "Tab")
        await page.wait_for_selector('#caller dd[data-fact="tariff"]')
        await page.select_option("#reason", "roaming")
        await page.click("#decide")
        await expect(page.locator("#accept-1")).to_have_text("Принять")
        await expect(page.locator("#accept-1")).to_be_enabled()
        why = await page.inner_text("#served .why")   # the service's explanation, in Russian
        assert re.search(r"[а-яА-Я]{4}", why) and "model" not in why and "Control" not in why, why
        await page.click("#accept-1")
        await page.click("#decline-2")
        await page.click("#decline-3")
        await page.wait_for_selector('#reward-status[data-status="joined"]')
        await page.screenshot(path=str(SHOTS / "ru-default-agent-decision.png"), full_page=True)

        await page.goto(str(client.make_url("/ui/")))
        await expect(page.locator("h1")).to_have_text("Панель маркетолога")
        await page.wait_for_selector("#by-channel tbody tr", timeout=60_000)   # the answered decision, counted
        await page.wait_for_selector('#offers tr[data-offer-id="home_cities"]')
        await page.screenshot(path=str(SHOTS / "ru-default-dashboard.png"), full_page=True)
        assert seen.errors == []
    finally:
        await context.close()


@pytest.mark.parametrize("locale, languages, lang", [
    ("ru-RU", None, "ru"),
    ("en-US", None, "en"),
    ("de-DE", None, "en"),                             # neither of ours: English
    ("de-DE", ["de-DE", "ru-RU", "en-US"], "ru"),      # the first of ours in the browser's list
    ("de-DE", ["de-DE", "en-GB", "ru"], "en"),
])
async def test_browser_follows_the_browsers_languages(make_client, browser, locale, languages, lang):
    client = await service(make_client, ui_language="browser")
    context, page, seen = await _context(browser, locale, languages)
    try:
        await page.goto(str(client.make_url("/ui/agent")))
        await _opens_in(page, lang)
        await page.fill("#subscriber", "abc")
        await page.press("#subscriber", "Tab")
        await expect(page.locator("#subscriber-error")).to_contain_text(
            {"ru": "не номер телефона", "en": "not a phone number"}[lang])
        await page.goto(str(client.make_url("/ui/")))
        await expect(page.locator("h1")).to_have_text({"ru": "Панель маркетолога", "en": "Marketing dashboard"}[lang])
        assert seen.errors == []
    finally:
        await context.close()


@pytest.mark.parametrize("setting, locale", [("ru", "en-US"), ("browser", "ru-RU"), ("en", "ru-RU")])
async def test_the_switch_is_remembered_across_reloads_and_beats_the_default(make_client, browser, setting, locale):
    """The top bar's switch (and ?lang) wins over ui_language and over the browser's
    language, on every page, until switched back."""
    default = "en" if setting == "en" else "ru"
    other = "ru" if default == "en" else "en"
    client = await service(make_client, ui_language=setting)
    context, page, seen = await _context(browser, locale)
    try:
        await page.goto(str(client.make_url("/ui/agent")))
        await _opens_in(page, default)
        await page.click("#lang")
        await _opens_in(page, other)
        await page.goto(str(client.make_url("/ui/agent")))   # no ?lang: remembered
        await _opens_in(page, other)
        await page.reload()
        await _opens_in(page, other)
        await page.goto(str(client.make_url("/ui/")))
        await expect(page.locator("#lang")).to_have_text({"ru": "English", "en": "Русский"}[other])
        assert await page.evaluate("document.documentElement.lang") == other
        await page.goto(str(client.make_url(f"/ui/agent?lang={default}")))   # ?lang is a choice too
        await _opens_in(page, default)
        await page.goto(str(client.make_url("/ui/agent")))
        await _opens_in(page, default)
        assert seen.errors == []
    finally:
        await context.close()
