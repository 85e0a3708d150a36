"""The one-time passwords of an admin's reset (bot.services.staff.generate_password)."""

import re

from bot.services.staff import generate_password, password_problem


def test_one_time_passwords_keep_the_rules_and_are_easy_to_pass_on():
    passwords = {generate_password("wangkz") for _ in range(300)}
    assert len(passwords) == 300
    for password in passwords:
        assert password_problem(password, "wangkz") is None
        assert re.fullmatch(r"[A-HJ-NP-Za-km-z2-9]{4}(-[A-HJ-NP-Za-km-z2-9]{4}){2}", password)  # no 0/O, 1/l/I
