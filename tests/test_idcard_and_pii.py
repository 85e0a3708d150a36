"""ID numbers (GB 11643) and how personal numbers are kept at rest."""

import base64
import datetime as dt
import os

import pytest

from bot import idcard
from bot.pii import (CASE_PHONE, VETERAN_ID, VETERAN_PHONE, NotDecryptable, PiiVault, mask_id, mask_phone,
                     normalize_phone)


def v1_cipher(vault: PiiVault, value: str) -> str:
    """A ciphertext as bot.pii wrote it before the row binding (no associated data)."""
    nonce = os.urandom(12)
    sealed = vault._aead.encrypt(nonce, value.encode("utf-8"), None)
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


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
    assert "11010519491231002X" not in protected.cipher and protected.cipher.startswith("v2:")
    assert vault.decrypt(protected.cipher, VETERAN_ID, protected.lookup) == "11010519491231002X"
    assert vault.protect_id("11010519491231002X").cipher != protected.cipher  # fresh nonce
    with pytest.raises(NotDecryptable):
        PiiVault("key-two").decrypt(protected.cipher, VETERAN_ID, protected.lookup)


def test_a_ciphertext_opens_only_in_its_table_column_and_row():
    vault = PiiVault("key-one")
    mine, other = vault.protect_id("11010519491231002X"), vault.protect_id(idcard.make("310114", dt.date(1970, 1, 1), 31))
    phone = vault.protect_phone("13812345678", VETERAN_PHONE, mine.lookup)
    assert vault.decrypt(phone.cipher, VETERAN_PHONE, mine.lookup) == "13812345678"
    for where, row_key in ((VETERAN_PHONE, other.lookup),  # another veteran's row
                           (VETERAN_ID, mine.lookup),  # another column of the same row
                           (CASE_PHONE, mine.lookup)):  # another table
        with pytest.raises(NotDecryptable):
            vault.decrypt(phone.cipher, where, row_key)
    with pytest.raises(NotDecryptable):  # altered
        vault.decrypt(phone.cipher[:-4] + ("AAAA" if not phone.cipher.endswith("AAAA") else "BBBB"),
                      VETERAN_PHONE, mine.lookup)
    with pytest.raises(NotDecryptable):
        vault.decrypt("v9:whatever", VETERAN_PHONE, mine.lookup)


def test_old_unbound_ciphertexts_still_open_and_are_rewrapped_bound():
    vault = PiiVault("key-one")
    old = v1_cipher(vault, "13812345678")
    assert vault.decrypt(old, VETERAN_PHONE, "any row") == "13812345678"  # v1 is read as before
    bound = vault.rewrap(old, VETERAN_PHONE, "row-a")
    assert bound.startswith("v2:") and vault.decrypt(bound, VETERAN_PHONE, "row-a") == "13812345678"
    assert vault.rewrap(bound, VETERAN_PHONE, "row-a") == bound  # already bound: unchanged
    with pytest.raises(NotDecryptable):
        vault.decrypt(bound, VETERAN_PHONE, "row-b")


def test_masks():
    # Only province and prefecture: with the birth date, gender and district stored in
    # clear, any further digit would narrow the number down (tests/db/test_ids_at_rest.py).
    assert mask_id("11010519491231002X") == "1101**************"
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
