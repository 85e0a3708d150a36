from pathlib import Path

import yaml

from bot.labels import _labels, intent_label
from bot.pii import PiiVault
from bot.render import render_message
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_serve_the_demo():
    settings = Settings.from_env({})
    assert settings.rasa_port == 5005 and settings.action_port == 5055
    assert settings.gateway_port == 8080 and settings.mock_wechat_port == 8081
    assert settings.service_phone == "12345"
    assert settings.wechat_aes_key is None
    assert settings.process_environment()["VETBOT_ACTION_SERVER_URL"] == "http://127.0.0.1:5055/webhook"


def test_environment_overrides_and_derived_urls():
    settings = Settings.from_env({
        "VETBOT_ACTION_PORT": "6000", "VETBOT_SERVICE_PHONE": "021-1", "VETBOT_VAR_DIR": "/tmp/v",
        "WECHAT_AES_KEY": "k" * 43,
    })
    assert settings.action_server_url == "http://127.0.0.1:6000/webhook"
    assert settings.service_phone == "021-1"
    assert str(settings.tracker_db) == "/tmp/v/tracker.db"
    assert settings.wechat_aes_key == "k" * 43
    # What other modules used to read from the environment themselves comes from here too.
    assert settings.tracker_url == "sqlite:////tmp/v/tracker.db"
    assert (settings.pii_key, settings.sms_sender) == (None, "log")


def test_the_tracker_url_the_pii_key_and_the_sms_sender_are_settings(tmp_path):
    settings = Settings.from_env({
        "VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "secret", "VETBOT_TRACKER_DB": "/data/t.db",
        "VETBOT_PII_KEY": " pii-secret ", "VETBOT_SMS_SENDER": "bureau.sms:Sender",
    })
    assert settings.tracker_url == "sqlite:////data/t.db"
    assert (settings.pii_key, settings.sms_sender) == ("pii-secret", "bureau.sms:Sender")
    assert Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_TRACKER_URL": "postgresql://r@db/rasa"}
                             ).tracker_url == "postgresql://r@db/rasa"
    # The vault keys personal numbers with the separate key when one is set.
    lookup = PiiVault.from_settings(settings).lookup_hash("phone", "13812345678")
    assert lookup == PiiVault("pii-secret").lookup_hash("phone", "13812345678")
    assert lookup != PiiVault("secret").lookup_hash("phone", "13812345678")


def test_every_domain_intent_and_faq_topic_has_a_chinese_label():
    # Every file of the domain: an intent declared outside core.yml once reached
    # the user as "add_complaint_information" in the clarifying question.
    intents = set()
    for path in (ROOT / "domain").rglob("*.yml"):
        intents |= set(yaml.safe_load(path.read_text(encoding="utf-8")).get("intents") or [])
    labels = _labels()
    assert {"add_complaint_information", "rate_complaint", "greet"} <= intents
    assert set(intents) - {"faq"} == set(labels["intents"])
    topics = set()
    for path in (ROOT / "domain" / "faq").glob("*.yml"):
        topics |= {name.split("/")[1] for name in yaml.safe_load(path.read_text(encoding="utf-8"))["responses"]}
    assert topics == set(labels["faq_topics"])
    assert intent_label("faq/report_in") == "退役报到"
    assert intent_label("find_station") == "查找服务站"


def test_buttons_render_as_a_numbered_list():
    text = render_message({"text": "请选择：", "buttons": [{"title": "甲", "payload": "/a"}, {"title": "乙", "payload": "/b"}]})
    assert text == "请选择：\n1. 甲\n2. 乙"


def test_the_action_server_token_is_derived_from_the_key_unless_given(tmp_path):
    from bot.settings import derived_token

    one = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k1"})
    same = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k1"})
    other = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k2"})
    assert one.action_token == same.action_token != other.action_token
    assert len(one.action_token) == 64 and "k1" not in one.action_token
    assert derived_token("k1", "action server") != derived_token("k1", "rasa api")
    given = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k1",
                               "VETBOT_ACTION_TOKEN": "from-the-vault"})
    assert given.action_token == "from-the-vault"
    passed = one.process_environment()
    assert passed["VETBOT_ACTION_TOKEN"] == one.action_token and passed["SANIC_HOST"] == "127.0.0.1"
