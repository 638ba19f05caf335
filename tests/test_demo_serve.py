"""``nextbest demo --serve`` serves people after the simulation: the service gets the
configured reward wait back (600 s), so an agent who answers seconds after the offer is
heard, not answered ``late_reward`` as under the simulation's scaled 1.8 s — through the
API and, where Debian's chromium is installed, on the desktop in a browser, which opens
in Russian (the telecom example's ``ui_language``) though the browser is English."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp

from tests.harness import REPO_ROOT, _free_port, _redis_servers_on, short_tempdir

CHROMIUM = "/usr/bin/chromium"


async def test_demo_serve_takes_an_answer_five_seconds_after_the_offer():
    data_dir = short_tempdir("nbserve") / "demo"
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bandit.cli", "demo", "--serve", "--port", str(port), "--contacts", "200",
        "--subscribers", "300", "--quiet", "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO_ROOT)
    output: list[str] = []
    try:
        async def until_serving() -> None:
            assert process.stdout is not None
            while not any("keeps running" in line for line in output):
                line = await process.stdout.readline()
                assert line, "the demo ended:\n" + "".join(output)
                output.append(line.decode(errors="replace"))
        await asyncio.wait_for(until_serving(), timeout=150)
        said = "".join(output)
        assert "reward wait: 1.8 s during the simulation, now 600 s" in said, said

        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(url) as http:
            async with http.post("/ui/api/agent/decide", json={"subscriber_id": "79001234567",
                                                               "reason": "roaming"}) as response:
                assert response.status == 200, await response.text()
                decision = await response.json()
            await asyncio.sleep(5)   # the agent pitches, the caller thinks it over
            answer = {"event_id": decision["event_id"], "subscriber_id": "79001234567",
                      "offer_id": decision["offers"][0]["offer_id"], "outcome": "accept"}
            async with http.post("/ui/api/agent/reward", json=answer) as response:
                body = await response.json()
                assert response.status in (200, 202) and body["status"] in ("stored", "joined"), body
        if os.path.exists(CHROMIUM):
            await _accept_in_the_browser_five_seconds_later(url)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
    assert not _redis_servers_on(data_dir)


async def _accept_in_the_browser_five_seconds_later(url: str) -> None:
    """The agent's way: the desktop of the demo, Accept clicked 5 s after the offer."""
    from playwright.async_api import async_playwright, expect

    from tests.browser import SHOTS

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM,
                                               args=["--no-sandbox", "--disable-background-networking"])
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 1100}, locale="en-US")
            page = await context.new_page()
            page.set_default_timeout(15_000)
            await page.goto(f"{url}/ui/agent")
            await expect(page.locator("#call-title")).to_have_text("Входящий звонок")   # the example's language
            await page.fill("#subscriber", "8 900 765-43-21")
            await page.press("#subscriber", "Tab")
            await page.select_option("#reason", "roaming")
            await page.click("#decide")
            await expect(page.locator("#accept-1")).to_be_enabled()
            await page.wait_for_timeout(5_000)   # the agent pitches, the caller thinks it over
            await page.click("#accept-1")
            await expect(page.locator("#outcome-1")).to_have_text("Принято")
            status = page.locator("#reward-status")
            await expect(status).to_have_attribute("data-status", re.compile(r"^(stored|joined)$"))
            assert "Слишком поздно" not in await status.inner_text()
            await page.screenshot(path=str(SHOTS / "demo-serve-accepted.png"), full_page=True)
        finally:
            await browser.close()
