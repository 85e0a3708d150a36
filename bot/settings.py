"""One typed settings object, read from the environment.

Every port, path and secret the processes use comes from here; the defaults
serve the embedded demo (SQLite, a mock WeChat API, everything on localhost).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from bot.client_address import IPNetwork, parse_trusted_proxies

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The local mock WeChat API's AppSecret (bot.wechat.mockapi): a demo value, never a real one.
MOCK_WECHAT_SECRET = "vetbot-demo-secret"
# The demo account's token and AppID: public, so production refuses them (bot/production.py).
DEMO_WECHAT_TOKEN = "vetbot-demo-token"
DEMO_WECHAT_APPID = "wxdemo0000000000"


def _env(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def holidays_file(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The holiday schedule staff edit (VETBOT_HOLIDAYS_FILE, default data/holidays.yml).

    A function of its own because ``bot.services.stations.day_status`` reads it
    in every process without building the whole Settings (which may create the demo key).
    """
    env = os.environ if environ is None else environ
    return Path(_env(env, "VETBOT_HOLIDAYS_FILE", str(PROJECT_ROOT / "data" / "holidays.yml")))


def _demo_secret(var_dir: Path) -> str:
    """The key for a demo machine: random, made once, kept in var/ (never in the repo).

    Production sets VETBOT_SECRET_KEY; losing this file makes the stored ID and
    phone numbers of a demo database unreadable, which is the point of the key.
    """
    path = var_dir / "secret.key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        return key


def derived_token(secret_key: str, purpose: str) -> str:
    """A token for one internal service, derived from the secret key (HMAC-SHA256):
    the same in every process of an installation, different for each purpose, and
    telling nothing about the key."""
    return hmac.new(secret_key.encode("utf-8"), f"vetbot {purpose} token".encode("utf-8"),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Settings:
    database_url: str
    tracker_db: Path
    wechat_token: str
    wechat_appid: str
    wechat_aes_key: Optional[str]
    wechat_api_base: str
    # The AppSecret for the access token. Only the local mock WeChat API has a
    # default; against the real API (WECHAT_API_BASE set) it must come from the environment.
    wechat_secret: str
    # The account's 原始ID (gh_…): when set, messages to another account are refused.
    wechat_account_id: Optional[str]
    # Seconds the gateway waits for the bot before answering WeChat `success` and
    # sending the answer through the customer-service API (WeChat waits 5 s).
    wechat_reply_budget: float
    # Redis for the gateway's nonces, retry replies and the shared access token; unset:
    # in memory / the database (one gateway).
    redis_url: Optional[str]
    # Seconds between the gateway's runs of the outbox (reminders, complaint notices).
    outbox_interval: float
    rasa_url: str
    action_server_url: str
    secret_key: str
    service_phone: str
    bureau_name: str
    rasa_port: int
    action_port: int
    gateway_port: int
    mock_wechat_port: int
    var_dir: Path
    public_base_url: str
    stations_file: Path
    services_file: Path
    closures_file: Path
    demo_veterans: int
    # Statutory holidays and 调休 for years chinesecalendar does not know yet, and open_days.
    holidays_file: Path = PROJECT_ROOT / "data" / "holidays.yml"
    # While a user waits for staff, what they write is acknowledged at most once in this
    # many minutes ("已收到 …", bot.gateway.handoff).
    handoff_ack_minutes: float = 10.0

    @property
    def mock_wechat(self) -> bool:
        """True when the gateway talks to the local mock WeChat API (`vetbot serve` starts it)."""
        return self.wechat_api_base == f"http://127.0.0.1:{self.mock_wechat_port}"

    # The token Rasa sends with every call to the action server (endpoints.yml,
    # action_endpoint.token), which refuses calls without it (rasa_sdk_plugins/).
    # VETBOT_ACTION_TOKEN, else derived from the secret key, so that every process
    # of one installation agrees on it without another file.
    action_token: str = ""
    # The secret of the JSON Web Tokens that Rasa's HTTP API and the REST channel
    # require (bot/rasa_auth.py): VETBOT_RASA_TOKEN, else derived from the secret key.
    rasa_token: str = ""
    # The interface the action server listens on (rasa-sdk's SANIC_HOST): loopback
    # unless the action server runs on another machine.
    action_host: str = "127.0.0.1"
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR blocks): the
    # console throttles sign-in by the real client's address (bot/client_address.py).
    # Empty: the header is ignored and the peer address counts.
    trusted_proxies: Tuple[IPNetwork, ...] = ()
    # A separate key for personal numbers at rest (bot/pii.py); unset: the secret key.
    pii_key: Optional[str] = None
    # Who sends the binding codes by SMS: "log" (the demo: codes in the log and on the
    # page) or "package.module:ClassName" (bot/services/sms.py).
    sms_sender: str = "log"
    # Where the console reads Rasa's conversations (an SQLAlchemy URL): the tracker store
    # of endpoints.yml. Unset: the SQLite file ``tracker_db``.
    tracker_url: str = ""

    def process_environment(self) -> Dict[str, str]:
        """Variables that endpoints.yml and the action server read, for the processes we start."""
        return {
            "VETBOT_ACTION_SERVER_URL": self.action_server_url,
            "VETBOT_TRACKER_DB": str(self.tracker_db),
            "VETBOT_ACTION_TOKEN": self.action_token,
            "VETBOT_RASA_TOKEN": self.rasa_token,
            "SANIC_HOST": self.action_host,
        }

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if environ is None else environ
        var_dir = Path(_env(env, "VETBOT_VAR_DIR", str(PROJECT_ROOT / "var")))
        rasa_port = int(_env(env, "VETBOT_RASA_PORT", "5005"))
        action_port = int(_env(env, "VETBOT_ACTION_PORT", "5055"))
        mock_port = int(_env(env, "VETBOT_MOCK_WECHAT_PORT", "8081"))
        secret_key = env.get("VETBOT_SECRET_KEY", "").strip() or _demo_secret(var_dir)
        return cls(
            database_url=_env(env, "VETBOT_DATABASE_URL", f"sqlite:///{var_dir / 'vetbot.db'}"),
            tracker_db=Path(_env(env, "VETBOT_TRACKER_DB", str(var_dir / "tracker.db"))),
            wechat_token=_env(env, "WECHAT_TOKEN", DEMO_WECHAT_TOKEN),
            wechat_appid=_env(env, "WECHAT_APPID", DEMO_WECHAT_APPID),
            wechat_aes_key=env.get("WECHAT_AES_KEY") or None,
            wechat_api_base=_env(env, "WECHAT_API_BASE", f"http://127.0.0.1:{mock_port}").rstrip("/"),
            wechat_secret=env.get("WECHAT_SECRET", "").strip()
            or ("" if env.get("WECHAT_API_BASE", "").strip() else MOCK_WECHAT_SECRET),
            wechat_account_id=env.get("WECHAT_ACCOUNT_ID", "").strip() or None,
            wechat_reply_budget=float(_env(env, "VETBOT_WECHAT_REPLY_BUDGET", "4.5")),
            redis_url=env.get("VETBOT_REDIS_URL", "").strip() or None,
            outbox_interval=float(_env(env, "VETBOT_OUTBOX_INTERVAL", "30")),
            rasa_url=_env(env, "RASA_URL", f"http://127.0.0.1:{rasa_port}"),
            action_server_url=_env(
                env, "VETBOT_ACTION_SERVER_URL", f"http://127.0.0.1:{action_port}/webhook"
            ),
            secret_key=secret_key,
            action_token=env.get("VETBOT_ACTION_TOKEN", "").strip() or derived_token(secret_key, "action server"),
            action_host=_env(env, "VETBOT_ACTION_HOST", "127.0.0.1"),
            trusted_proxies=parse_trusted_proxies(env.get("VETBOT_TRUSTED_PROXIES", "")),
            pii_key=env.get("VETBOT_PII_KEY", "").strip() or None,
            sms_sender=env.get("VETBOT_SMS_SENDER", "").strip() or "log",
            tracker_url=env.get("VETBOT_TRACKER_URL", "").strip()
            or f"sqlite:///{Path(_env(env, 'VETBOT_TRACKER_DB', str(var_dir / 'tracker.db')))}",
            rasa_token=env.get("VETBOT_RASA_TOKEN", "").strip() or derived_token(secret_key, "rasa api"),
            # 12345 is the national 政务服务便民热线; a bureau sets its own number.
            service_phone=_env(env, "VETBOT_SERVICE_PHONE", "12345"),
            bureau_name=_env(env, "VETBOT_BUREAU_NAME", "区退役军人事务局"),
            rasa_port=rasa_port,
            action_port=action_port,
            gateway_port=int(_env(env, "VETBOT_GATEWAY_PORT", "8080")),
            mock_wechat_port=mock_port,
            var_dir=var_dir,
            # Where WeChat users reach the gateway (the H5 binding page's links).
            public_base_url=_env(
                env, "VETBOT_PUBLIC_URL", f"http://127.0.0.1:{_env(env, 'VETBOT_GATEWAY_PORT', '8080')}"
            ).rstrip("/"),
            # The service network (staff edit this file; `vetbot load-stations` reloads it).
            # Demo veterans for an empty database: only on the embedded default
            # (SQLite under var/), never on a configured production database.
            demo_veterans=int(_env(env, "VETBOT_DEMO_VETERANS",
                                   "0" if env.get("VETBOT_DATABASE_URL", "").strip() else "5000")),
            stations_file=Path(_env(env, "VETBOT_STATIONS_FILE", str(PROJECT_ROOT / "data" / "stations.yml"))),
            # Bookable services and one-off closures (`vetbot load-services` reloads them).
            services_file=Path(_env(env, "VETBOT_SERVICES_FILE", str(PROJECT_ROOT / "data" / "services.yml"))),
            closures_file=Path(_env(env, "VETBOT_CLOSURES_FILE", str(PROJECT_ROOT / "data" / "closures.yml"))),
            # Holidays for years chinesecalendar does not know (`vetbot calendar-check` checks it).
            holidays_file=holidays_file(env),
            handoff_ack_minutes=float(_env(env, "VETBOT_HANDOFF_ACK_MINUTES", "10")),
        )


def internal_token(variable: str) -> str:
    """An internal service's token as `vetbot serve` passes it to the processes it starts
    (VETBOT_ACTION_TOKEN, VETBOT_RASA_TOKEN); else this installation's own, derived from
    the secret key, which is read (or, in a demo, made) only then."""
    given = os.environ.get(variable, "").strip()
    if given:
        return given
    settings = Settings.from_env()
    return {"VETBOT_ACTION_TOKEN": settings.action_token, "VETBOT_RASA_TOKEN": settings.rasa_token}[variable]
