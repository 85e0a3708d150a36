"""The staff console in a real browser: Playwright for Python driving Debian's Chromium
headless (/usr/bin/chromium; no browser download) against the running assistant, with
a simulated WeChat user on the other side.

A district staff member signs in, sees the handoff the WeChat user asks for appear in
the queue without reloading (an urgent one above it), claims it, sees the user's next
message arrive in the open transcript, replies (the reply reaches the mock WeChat API;
with the user's 48-hour window closed, the staff member is told it did not), hands
back, and later takes the user's conversation over from the recent ones; a station
account cannot open another station's complaint; posts without the form's CSRF token
are refused. Screenshots of the queue, a transcript and the dashboard go to
docs/screenshots (linked from the README).

(Sorts before test_gateway_wechat.py and test_serve.py, whose last test stops the
shared assistant.)
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT
from tests.e2e.conftest import wechat_user

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
PASSWORD = "Browser-Test-Pass-2026"  # a test value, not a real credential
# As the machine's notes advise: no background networking (the closed network refuses it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("VETBOT_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/ensure-chromium.sh)")
        pytest.skip(f"{CHROMIUM} is not installed")


def _create_staff(assistant, username: str, name: str, role: str, station=None) -> None:
    env = dict(assistant["env"], VETBOT_STAFF_PASSWORD=PASSWORD)
    command = [sys.executable, "-m", "bot.cli", "create-staff", username, "--role", role, "--name", name]
    if station:
        command += ["--station", station]
    result = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _complaint_at(assistant, station_code: str) -> int:
    """A case about another station, registered by the complaint service in the assistant's database."""
    from sqlalchemy import select

    from bot.db.models import Station
    from bot.db.session import make_engine, make_session_factory, session_scope
    from bot.pii import PiiVault
    from bot.services import complaints
    from bot.settings import Settings

    settings = Settings.from_env(assistant["env"])
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            station_id = session.execute(select(Station.id).where(Station.code == station_code)).scalar_one()
            view = complaints.register(session, PiiVault.from_settings(settings), "o-browser-other", None, None,
                                       "马陆镇的补贴一直没有发放。", "马陆镇", station_id, "wechat", None, False,
                                       dt.datetime.now(dt.timezone.utc))
            return view.id
    finally:
        engine.dispose()


async def _window(assistant, openid: str, open_: bool) -> None:
    """Open or close the user's 48-hour window at the mock WeChat API."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{assistant['mock_wechat']}/mock/window", json={"openid": openid, "open": open_}) as r:
            assert r.status == 200


async def _sign_in(page, gateway: str, username: str) -> None:
    await page.goto(f"{gateway}/console/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{gateway}/console")


async def test_a_staff_member_takes_a_handoff_in_the_browser(assistant):
    _chromium_or_skip()
    from playwright.async_api import async_playwright, expect

    gateway = assistant["gateway"]
    _create_staff(assistant, "zhaozr", "赵主任", "district", "JD")
    _create_staff(assistant, "wangkz", "王科长", "station", "JD-AT")
    other_case = _complaint_at(assistant, "JD-ML")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    user = wechat_user(assistant)
    async with async_playwright() as playwright, user:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await _sign_in(page, gateway, "zhaozr")
            await page.goto(f"{gateway}/console/handoffs")

            # The user asks for a person; the open queue shows it without a reload.
            asked = await user.say("你好，转人工")
            assert "已为您转接人工服务" in asked.texts[0]
            await user.say("我想问一下优待证的办理进度")
            row = page.locator("tr[data-handoff]", has_text="我想问一下优待证的办理进度")
            await expect(row).to_have_count(1, timeout=15_000)
            await expect(row).to_contain_text("用户要求转人工")
            # Another user, later, in danger: an urgent complaint goes to the top of the queue.
            async with wechat_user(assistant) as urgent_user:
                answer = await urgent_user.say("补助一直不发，我真的不想活了")
                assert "110" in " ".join(answer.texts + await urgent_user.later_texts(timeout=5))
            urgent = page.locator("tr[data-handoff]", has_text="我真的不想活了")
            await expect(urgent).to_have_count(1, timeout=15_000)
            await expect(urgent).to_contain_text("紧急")
            rows = await page.locator("tr[data-handoff]").all_inner_texts()
            position = {text: next(n for n, row_text in enumerate(rows) if text in row_text)
                        for text in ("我真的不想活了", "我想问一下优待证的办理进度")}
            assert position["我真的不想活了"] < position["我想问一下优待证的办理进度"]  # though it came later
            await page.screenshot(path=str(SCREENSHOTS / "console-queue.png"), full_page=True)

            # Open, claim; the user's next message appears in the open transcript by itself.
            await row.get_by_role("link", name="打开对话").click()
            await page.get_by_role("button", name="接待此会话").click()
            await expect(page.locator(".notice")).to_contain_text("已接待")
            transcript = page.locator("#transcript")
            await expect(transcript).to_contain_text("request_human")  # intent and confidence beside it
            sent_at = time.monotonic()
            await user.say("我是去年12月退伍的")
            await expect(transcript).to_contain_text("我是去年12月退伍的", timeout=15_000)
            print(f"message to open transcript: {(time.monotonic() - sent_at) * 1000:.0f} ms")

            # The reply goes to the user through the customer-service API.
            await page.fill("#reply-text", "您好，我是区退役军人服务中心的赵主任，您的优待证已在制作中。")
            await page.get_by_role("button", name="发送").click()
            await expect(page.locator(".notice")).to_contain_text("回复已发送")
            later = await user.later_texts(timeout=15)
            assert later == ["您好，我是区退役军人服务中心的赵主任，您的优待证已在制作中。"]
            await expect(transcript).to_contain_text("工作人员 赵主任")
            await page.screenshot(path=str(SCREENSHOTS / "console-transcript.png"), full_page=True)

            # The user's 48-hour window closes (WeChat refuses with 45015): the staff member is told.
            await _window(assistant, user.openid, open_=False)
            await page.fill("#reply-text", "请问您方便接电话吗？")
            await page.get_by_role("button", name="发送").click()
            await expect(page.get_by_role("alert")).to_contain_text("超过48小时未与公众号互动")
            await _window(assistant, user.openid, open_=True)

            # A post without the form's token is refused, and changes nothing.
            handoff_path = page.url.split(gateway, 1)[1].split("?", 1)[0]
            refused = await page.request.post(f"{gateway}{handoff_path}/note", form={"text": "没有令牌的备注"})
            assert refused.status == 403 and "页面已失效" in await refused.text()
            refused = await page.request.post(f"{gateway}{handoff_path}/close", form={})
            assert refused.status == 403
            await page.reload()
            assert "没有令牌的备注" not in await page.content()

            # Handing back: the user is told, and the bot answers again.
            await page.get_by_role("button", name="结束人工服务，交还机器人").click()
            await expect(page.locator(".notice")).to_contain_text("已交还机器人")
            assert "荣军助手继续为您服务" in (await user.later_texts(timeout=15))[0]
            again = await user.say("你好")
            assert "您好" in again.texts[0]

            # Later the same user writes again; a staff member takes the conversation over.
            await user.say("我还想咨询一下安置的事情")
            await page.goto(f"{gateway}/console/conversations")
            mine = page.locator("tr", has_text="我还想咨询一下安置的事情")
            await mine.get_by_role("button", name="接管").click()
            await expect(page.locator(".notice")).to_contain_text("已接管会话")
            assert "工作人员已接入" in (await user.later_texts(timeout=15))[0]
            quiet = await user.say("好的，谢谢")
            assert quiet.texts == []  # paused: the person answers now
            await expect(page.locator("#transcript")).to_contain_text("好的，谢谢", timeout=15_000)

            await page.goto(f"{gateway}/console/dashboard")
            await page.screenshot(path=str(SCREENSHOTS / "console-dashboard.png"), full_page=True)

            # A station account cannot open another station's complaint.
            station = await browser.new_context(locale="zh-CN")
            station_page = await station.new_page()
            await _sign_in(station_page, gateway, "wangkz")
            response = await station_page.goto(f"{gateway}/console/complaints/{other_case}")
            assert response.status == 404
            await expect(station_page.locator("body")).to_contain_text("没有找到")
            missing = await station_page.goto(f"{gateway}/console/complaints/99999999")
            assert missing.status == 404
            await station.close()
        finally:
            await browser.close()
