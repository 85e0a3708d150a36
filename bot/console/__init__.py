"""The staff console (工作台): server-rendered pages under /console for the bureau's and
the stations' staff and for trainers.

``setup_console(app)`` adds the pages to the gateway's application (bot.gateway.app);
``bot.console.auth`` holds sign-in, sessions, CSRF and the role and scope checks that
every console page uses; ``bot.console.pages`` the frame and the audit log; the sections
are ``handoffs`` (人工接待, with ``live`` for updates without a reload), ``complaints``
(投诉登记簿), ``appointments`` (预约), ``dashboard`` (数据看板, with ``charts``) and
``accounts`` (修改密码 for everyone, 账号管理 for admins); ``bot.console.accounts_cli``
is ``vetbot create-staff`` and ``vetbot staff …``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this package; aiohttp waits until the console is set up
    from aiohttp import web


def setup_console(app: "web.Application") -> None:
    """Add the console's routes and middleware to the gateway app (before it starts)."""
    from bot.console.pages import setup_console as setup

    setup(app)
