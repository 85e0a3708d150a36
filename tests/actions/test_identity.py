"""action_bind_identity / action_unbind_identity on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from actions import resources
from actions.identity import ActionBindIdentity, ActionUnbindIdentity
from bot.db.models import BindingAudit, BindingLink, BindingLock, WechatBinding
from bot.db.session import session_scope
from bot.services import identity
from bot.settings import Settings
from tests.conftest import TEST_SECRET, make_tracker
from tests.services.veterans import add_veteran

PUBLIC = "https://vetbot.example.gov.cn"
OPENID = "test-user"  # make_tracker's sender id


@pytest.fixture
def use_database(session_factory, vault, tmp_path):
    settings = Settings.from_env({
        "VETBOT_SECRET_KEY": TEST_SECRET,
        "VETBOT_VAR_DIR": str(tmp_path / "var"),
        "VETBOT_PUBLIC_URL": PUBLIC,
    })
    resources.use(settings, session_factory, vault)
    yield session_factory
    resources.use(None, None, None)


def bind_directly(factory, vault):
    entry = add_veteran(factory, vault, name="张三明")
    with session_scope(factory) as session:
        session.add(WechatBinding(openid=OPENID, veteran_id=entry.veteran_id))
    return entry


def links(factory):
    with session_scope(factory) as session:
        return session.execute(select(func.count()).select_from(BindingLink)).scalar_one()


async def test_unbound_user_gets_a_one_time_link(use_database, vault, dispatcher):
    events = await ActionBindIdentity().run(dispatcher, make_tracker([]), {})
    assert events == []
    [message] = dispatcher.messages
    assert message["response"] == "utter_identity_binding_link"
    assert message["minutes"] == 10
    assert message["link"].startswith(f"{PUBLIC}/bind?t=")
    token = message["link"].split("?t=", 1)[1]
    with session_scope(use_database) as session:
        link = identity.check_link(session, vault, token, dt.datetime.now(dt.timezone.utc))
        assert isinstance(link, BindingLink) and link.openid == OPENID


async def test_bound_user_is_told_with_the_masked_name(use_database, vault, dispatcher):
    bind_directly(use_database, vault)
    await ActionBindIdentity().run(dispatcher, make_tracker([]), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_identity_already_bound"
    assert message["veteran_name"] == "张*明"
    assert links(use_database) == 0


async def test_locked_user_is_told_when_to_retry(use_database, vault, dispatcher):
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=17)
    with session_scope(use_database) as session:
        session.add(BindingLock(openid=OPENID, failures=0, locked_until=until))
    await ActionBindIdentity().run(dispatcher, make_tracker([]), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_identity_binding_locked"
    assert message["retry_at"] == identity.format_beijing(until)
    assert links(use_database) == 0


async def test_unbind(use_database, vault, dispatcher):
    await ActionUnbindIdentity().run(dispatcher, make_tracker([]), {})
    assert dispatcher.messages[-1]["response"] == "utter_identity_not_bound"

    bind_directly(use_database, vault)
    await ActionUnbindIdentity().run(dispatcher, make_tracker([]), {})
    assert dispatcher.messages[-1]["response"] == "utter_identity_unbound"
    with session_scope(use_database) as session:
        assert session.execute(select(func.count()).select_from(WechatBinding)).scalar_one() == 0
        events = session.execute(select(BindingAudit.event)).scalars().all()
    assert events == ["unbind"]
