"""Subscriber ids are personal data (phone numbers): everything nextbest stores or
logs is keyed by a keyed hash of the id, never the id itself."""

from __future__ import annotations

import hashlib
import hmac


class SubscriberHasher:
    """HMAC-SHA256 with the deployment's secret, truncated to 128 bits (32 hex chars)."""

    def __init__(self, secret: bytes) -> None:
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __call__(self, subscriber_id: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(subscriber_id.encode())
        return keyed.hexdigest()[:32]

    def digest(self, data: bytes) -> str:
        """The same keyed hash of any bytes: a request body's digest, kept to tell a retry
        from another request under the same id, must not reveal the subscriber id in it."""
        keyed = self._keyed.copy()
        keyed.update(data)
        return keyed.hexdigest()[:32]
