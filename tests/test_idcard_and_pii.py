"""ID numbers (GB 11643) and how personal numbers are kept at rest."""

import datetime as dt

import pytest

from bot import idcard
from bot.pii import PiiVault, mask_id, mask_phone, normalize_phone


# The example number of GB 11643 (check character X), in both cases.
@pytest.mark.parametrize("number", ["11010519491231002X", "11010519491231002x"])
def test_published_examples_are_valid(number):
    assert idcard.parse(number) is not None
    assert idcard.problem(number) is None


def test_parse_reads_birth_date_and_gender():
    card = idcard.parse("11010519491231002X")
    assert card.birth_date == dt.date(1949, 12, 31)
    assert card.gender == "女"
    assert card.area_code == "110105"


def test_make_gives_the_check_character_and_gender():
    number = idcard.make("310114", dt.date(1985, 6, 15), 371)
    card = idcard.parse(number)
    assert card.gender == "男" and card.birth_date == dt.date(1985, 6, 15)
    assert idcard.parse(idcard.make("310114", dt.date(1990, 2, 28), 12)).gender == "女"


@pytest.mark.parametrize("raw, reason", [
    ("", "身份证号为空"),
    ("1101051949123100", "应为18位"),
    ("11010519491231002Y", "只能由数字组成"),
    ("110105194902300021", "出生日期不存在"),
    ("110105194912310021", "校验位不正确"),
])
def test_problem_explains_in_chinese(raw, reason):
    assert reason in idcard.problem(raw)
    assert idcard.parse(raw) is None


def test_lowercase_x_and_full_width_digits_are_accepted():
    assert idcard.parse("11010519491231002x").number == "11010519491231002X"
    assert idcard.parse("１１０１０５１９４９１２３１００２Ｘ") is not None


def test_lookup_hash_is_keyed_and_stable():
    a, b = PiiVault("key-one"), PiiVault("key-two")
    number = "11010519491231002X"
    assert a.id_lookup(number) == a.id_lookup(" 11010519491231002x ")
    assert a.id_lookup(number) != b.id_lookup(number)
    # The same digits as an ID and as a phone must not share a hash.
    assert a.lookup_hash("id", "13800000000") != a.lookup_hash("phone", "13800000000")


def test_cipher_round_trips_and_hides_the_number():
    vault = PiiVault("key-one")
    protected = vault.protect_id("11010519491231002X")
    assert "11010519491231002X" not in protected.cipher
    assert vault.decrypt(protected.cipher) == "11010519491231002X"
    assert vault.protect_id("11010519491231002X").cipher != protected.cipher  # fresh nonce
    with pytest.raises(Exception):
        PiiVault("key-two").decrypt(protected.cipher)


def test_masks():
    assert mask_id("11010519491231002X") == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "0086-13812345678", "１３８１２３４５６７８"])
def test_phone_normalisation(raw):
    assert normalize_phone(raw) == "13812345678"


def test_settings_make_a_private_demo_key_when_none_is_configured(tmp_path):
    from bot.settings import Settings

    first = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path)})
    again = Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path)})
    assert first.secret_key == again.secret_key and len(first.secret_key) >= 40
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k"}).secret_key == "k"
