"""Subscriber ids are personal data (phone numbers): everything nextbest stores or
logs is keyed by a keyed hash of the id, never the id itself."""

from __future__ import annotations

import hashlib
import hmac

# One limit for a subscriber id wherever one comes in (decide, the profile API, the bulk
# loader, the agent desktop): a profile stored under an id that decide refuses is unreachable.
MAX_SUBSCRIBER_ID = 256


def subscriber_id_problem(subscriber_id: str) -> str | None:
    """Why ``subscriber_id`` is not a valid subscriber id, or None."""
    if not subscriber_id or subscriber_id.isspace():
        return "a subscriber id must not be empty"
    if len(subscriber_id) > MAX_SUBSCRIBER_ID:
        return f"a subscriber id has at most {MAX_SUBSCRIBER_ID} characters, got {len(subscriber_id)}"
    return None


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
