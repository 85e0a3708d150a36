"""Pieces of the /wechat endpoint that need no servers (bot.gateway.wechat); the
endpoint itself runs end to end in tests/e2e/test_gateway_wechat.py."""

import pytest

from bot.gateway.wechat import RateLimiter, load_menu, payload, short_id


def test_rate_limit_per_user_and_window():
    limiter = RateLimiter(limit=3, window=60)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", now=3)  # another user is not affected
    assert limiter.allow("a", now=60.5)  # the first message left the window


def test_the_menu_file_maps_every_key_to_a_payload(tmp_path):
    menu = load_menu()
    assert menu["MENU_COMPLAINT"] == "/file_complaint" and all(v.startswith("/") for v in menu.values())
    bad = tmp_path / "menu.yml"
    bad.write_text("menu:\n  MENU_X: 预约\n", encoding="utf-8")
    with pytest.raises(ValueError, match="MENU_X"):
        load_menu(bad)


def test_payloads_and_log_ids():
    assert payload("find_station", {"latitude": 31.3, "longitude": 121.2}) == \
        '/find_station{"latitude": 31.3, "longitude": 121.2}'
    assert len(short_id("o-abc")) == 10 and "o-abc" not in short_id("o-abc")
