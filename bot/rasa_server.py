"""`python -m bot.rasa_server run …`: Rasa's own command line, with the HTTP API locked.

The JWT secret (the installation's ``rasa_token``: VETBOT_RASA_TOKEN, else derived
from the secret key) is added to Rasa's arguments here, inside the process, and not
on the command line that starts it, where any local user could read it
(/proc/<pid>/cmdline). See bot/rasa_auth.py.
"""

from __future__ import annotations

import sys

from bot.production import refuse_demo_settings
from bot.settings import internal_token


def main() -> None:
    refuse_demo_settings("rasa")
    secret = internal_token("VETBOT_RASA_TOKEN")
    from rasa.__main__ import main as rasa_main  # after the checks: it takes seconds to import

    sys.argv = ["rasa", *sys.argv[1:], "--jwt-secret", secret, "--jwt-method", "HS256"]
    rasa_main()


if __name__ == "__main__":
    main()
