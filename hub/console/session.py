"""Signed session cookies (hmac-sha256) and CSRF tokens derived from the session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

COOKIE = "hub_console"
LOGIN_COOKIE = "hub_console_login"
LIFETIME = 8 * 3600  # seconds: one working day


def secret_from_env() -> bytes:
    """HUB_CONSOLE_SECRET, or a fresh secret for this process (sessions end on restart)."""
    raw = os.environ.get("HUB_CONSOLE_SECRET")
    return raw.encode() if raw else secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    name: str
    sid: str
    expires: int


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}|{payload}".encode(),
                             hashlib.sha256).digest())

    def issue(self, name: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        payload = _b64(json.dumps({"n": name, "s": secrets.token_hex(16),
                                   "e": int(now) + LIFETIME}).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["n"]), str(data["s"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        return session if session.expires > now else None

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))
