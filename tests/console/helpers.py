"""What the console's tests share: settings, the app, signing in, reading forms."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import List, Optional

from sqlalchemy import select

from bot.console import setup_console
from bot.console.auth import csrf_token
from bot.db.models import AuditEntry, ConsoleSession, StaffAccount
from bot.db.session import session_scope
from bot.gateway.app import create_app
from bot.services.sms import LogCodeSender
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import TEST_SECRET

TEST_PASSWORD = "Test-Only-Pass-2026"  # a test value, not a real credential
STATIONS_FILE = PROJECT_ROOT / "data" / "stations.yml"

# (username, display name, role, station code): the accounts of the ``accounts`` fixture.
# wangkz holds 安亭镇 (JD-AT and its communities); zhoumq holds 马陆镇 (JD-ML), a
# neighbouring area neither sees of the other.
ACCOUNTS = (
    ("admin1", "李管理", "admin", None),
    ("district1", "赵主任", "district", "JD"),
    ("wangkz", "王科长", "station", "JD-AT"),
    ("zhoumq", "周站长", "station", "JD-ML"),
    ("trainer1", "陈训练", "trainer", None),
)


def make_settings(database_url, tmp_path, public="http://127.0.0.1:8080", **extra: str) -> Settings:
    env = {
        "VETBOT_DATABASE_URL": database_url,
        "VETBOT_SECRET_KEY": TEST_SECRET,
        "VETBOT_VAR_DIR": str(tmp_path / "var"),
        "VETBOT_PUBLIC_URL": public,
    }
    env.update(extra)
    return Settings.from_env(env)


def build_console_app(settings, factory, vault):
    """The gateway's app with the console, as `vetbot serve` builds it (without /wechat)."""
    app = create_app(settings, factory, vault, LogCodeSender())
    setup_console(app)
    return app


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def form_csrf(html: str, action: str) -> str:
    """The CSRF token of the form on the page that posts to ``action`` (a path)."""
    pattern = rf'<form[^>]*action="{re.escape(action)}"[^>]*>.*?name="csrf" value="([^"]*)"'
    match = re.search(pattern, html, re.S)
    assert match, f"no form posting to {action}"
    return match.group(1)


async def sign_in(client, username: str, password: str = TEST_PASSWORD, next_path: Optional[str] = None):
    response = await client.get("/console/login")
    assert response.status == 200
    form = {"csrf": hidden(await response.text(), "csrf"), "username": username, "password": password}
    if next_path is not None:
        form["next"] = next_path
    return await client.post("/console/login", data=form, allow_redirects=False)


def audit_actions(factory) -> List[str]:
    with session_scope(factory) as session:
        return session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()


def session_token(factory, username: str, path: str) -> str:
    """The CSRF token the signed-in ``username`` would find on a form posting to ``path``
    (for a form the page does not offer: a refused or out-of-scope request)."""
    with session_scope(factory) as session:
        secret = session.execute(
            select(ConsoleSession.csrf_secret).join(StaffAccount, StaffAccount.id == ConsoleSession.staff_id)
            .where(StaffAccount.username == username).order_by(ConsoleSession.created_at.desc())
        ).scalars().first()
    return csrf_token(SimpleNamespace(csrf_secret=secret), path)
