"""Live updates of the console without a page reload.

The queue and an open transcript ask the gateway for news with a long poll: the
request waits until something changed or ``LONG_POLL_SECONDS`` passed. Whatever
changes a conversation in this process (a WeChat message handled by the gateway, a
staff member's reply, claim, note or hand-back) calls ``notify(app)``, which wakes
the waiting requests at once; they also look again every ``RECHECK_SECONDS``, so
changes made elsewhere (the action server opening a handoff, a second gateway
process) show within that time.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from aiohttp import web

LONG_POLL_SECONDS = 25.0
RECHECK_SECONDS = 2.0


class Changes:
    """A counter and an event: waiters wake when the counter moves."""

    def __init__(self) -> None:
        self.version = 0
        self._event: Optional[asyncio.Event] = None

    def notify(self) -> None:
        self.version += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, seen: int, timeout: float) -> int:
        """Until the version differs from ``seen`` or ``timeout`` seconds passed."""
        if self.version != seen:
            return self.version
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.version


CHANGES = web.AppKey("console_changes", Changes)


def changes(app: web.Application) -> Changes:
    if CHANGES not in app:
        raise RuntimeError("the console is not set up on this app")
    return app[CHANGES]


def notify(app: web.Application) -> None:
    """Something a console page shows may have changed (no-op without the console)."""
    if CHANGES in app:
        app[CHANGES].notify()
