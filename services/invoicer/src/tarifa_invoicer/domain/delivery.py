"""How an EDI push is signed, so the customer's system can trust it came from us, unchanged."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Tarifa-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, the scheme GitHub and Stripe webhooks made familiar."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)
