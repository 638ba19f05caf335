"""What the browser tests share: Debian's chromium driven by Playwright (never a
downloaded browser), a page that collects script errors and CSP violations, and the
example telecom service with two subscribers. The tests import the fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bandit.store.embedded import EmbeddedRedis
from tests.test_ui import ADMIN_KEY, KEYS, PROFILE, example  # noqa: F401  (KEYS: for the tests)

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"   # for a person to look at
SHOTS.mkdir(parents=True, exist_ok=True)
NEEDS_CHROMIUM = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                    "(apt-get install chromium; .ci/run does)")
playwright = pytest.importorskip("playwright.async_api", reason="pip install playwright (the test extras)")
expect = playwright.expect

# The telecom example opens the pages in Russian (ui_language: ru): a test that reads the English words says so.
ENGLISH = {"ui_language": "en"}

SUBSCRIBERS = {"+79001234567": PROFILE,   # E.164, as the desktop normalises what the agent types
               "+79007654321": {**PROFILE, "tariff": "basic", "balance": -5.0, "services": [], "data_gb": 30.0}}


@pytest.fixture
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    """A browser is slow next to the API: these run on the embedded Redis only."""
    return embedded_redis.url


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM),
                                               args=["--no-sandbox", "--disable-background-networking"])
        yield browser
        await browser.close()


class Tab:
    """A page plus the script errors and CSP violations it reported."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.errors.append(message.text)
                if message.type == "error" and "Failed to load resource" not in message.text else None)


@pytest.fixture
async def tab(browser) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport={"width": 1440, "height": 1100})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    yield Tab(page)
    await context.close()


async def service(make_client, **extra):
    client = await make_client(**example(**extra))
    headers = {"X-API-Key": ADMIN_KEY} if "api_keys" in extra else {}
    for number, profile in SUBSCRIBERS.items():
        assert (await client.put(f"/v1/subscribers/{number}", json=profile, headers=headers)).status in (200, 201)
    return client
