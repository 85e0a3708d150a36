"""The shared resources of the database-backed actions (bot.resources, re-exported
so that actions and their tests keep writing ``resources.open_session()``)."""

from bot.resources import open_session, session_factory, settings, use, vault  # noqa: F401
