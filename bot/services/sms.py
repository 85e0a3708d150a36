"""Sending the binding verification code (短信验证码) to the phone on the roster.

The sender is pluggable: production names its SMS gateway client in
``VETBOT_SMS_SENDER`` as ``package.module:ClassName`` (a class whose
constructor takes no arguments and which has ``send_code(phone, code)``);
the demo default ``log`` only writes the code to the log, with the phone masked.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import OrderedDict
from typing import Optional, Protocol, runtime_checkable

from bot.pii import mask_phone, normalize_phone

log = logging.getLogger(__name__)

SENDER_ENV = "VETBOT_SMS_SENDER"


@runtime_checkable
class CodeSender(Protocol):
    """Delivers a one-time code to a mobile number; raises if it could not."""

    def send_code(self, phone: str, code: str) -> None:
        ...


class LogCodeSender:
    """Demo sender: no SMS leaves the machine. The code goes to the log (phone
    masked) and stays in memory, so tests and the demo page can read it back."""

    # The demo H5 page shows the code, since no SMS is really sent.
    shows_code_on_page = True

    def __init__(self, keep: int = 100):
        self._keep = keep
        self._codes: "OrderedDict[str, str]" = OrderedDict()
        self._lock = threading.Lock()

    def send_code(self, phone: str, code: str) -> None:
        number = normalize_phone(phone)
        log.info("binding code for %s: %s (demo sender, no SMS sent)", mask_phone(number), code)
        with self._lock:
            self._codes.pop(number, None)
            self._codes[number] = code
            while len(self._codes) > self._keep:
                self._codes.popitem(last=False)

    def last_code(self, phone: Optional[str] = None) -> Optional[str]:
        """The latest code sent to ``phone``, or the latest of all without one."""
        with self._lock:
            if phone is None:
                return next(reversed(self._codes.values()), None)
            return self._codes.get(normalize_phone(phone))


def load_sender(spec: str = "log") -> CodeSender:
    """The sender named by ``spec`` (``Settings.sms_sender``: VETBOT_SMS_SENDER, else ``log``)."""
    spec = spec.strip() or "log"
    if spec == "log":
        return LogCodeSender()
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"{SENDER_ENV} must be 'log' or 'package.module:ClassName', not {spec!r}")
    cls = getattr(importlib.import_module(module_name), class_name)
    sender = cls()
    if not isinstance(sender, CodeSender):
        raise TypeError(f"{spec} has no send_code(phone, code) method")
    return sender
