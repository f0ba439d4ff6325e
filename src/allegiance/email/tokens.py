"""Signed unsubscribe tokens: ``<payload>.<signature>``, both base64url. The payload names the
tenant and member; the signature is HMAC-SHA256 with the tenant's own key, so a token works
only for the member it was made for and cannot be forged or moved to another tenant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


class BadToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:24])


def make_token(secret: str, tenant_id: str, member_id: str) -> str:
    payload = _b64(json.dumps({"t": tenant_id, "m": member_id}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, payload)}"


def read_token(token: str) -> tuple[str, str, str, str]:
    """(tenant id, member id, payload, signature), unverified."""
    if len(token) > 2_000 or token.count(".") != 1:
        raise BadToken("malformed token")
    payload, signature = token.split(".")
    try:
        data = json.loads(_unb64(payload))
        tenant_id, member_id = str(data["t"]), str(data["m"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    return tenant_id, member_id, payload, signature


def verify(secret: str, payload: str, signature: str) -> bool:
    return hmac.compare_digest(_sign(secret, payload), signature)
