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


class SubscriberIdError(ValueError):
    """Why a subscriber id is refused: ``template`` (English, ``{name}`` fields) and its
    ``values``, so the agent desktop can say it in the page's language and the API in English."""

    def __init__(self, template: str, **values: str) -> None:
        super().__init__(template.format(**values))
        self.template, self.values = template, values


_TOO = {2: "too short", 3: "too long", 5: "not the length of a number there", 4: "a local number only"}


def phone_e164(text: str, region: str | None) -> str:
    """A phone number in E.164 (``+79877398022``), read in ``region`` when it has no country
    code (RU: ``8 987 739-80-22``, ``79877398022``, ``+7 987 739 80 22`` are one number);
    ``SubscriberIdError`` for anything that is not a number in use. With the well-kept
    ``phonenumbers`` (Google's libphonenumber metadata), not a hand-written pattern."""
    import phonenumbers

    example = "e.g. 8 987 739-80-22 or +7 987 739 80 22" if region == "RU" else "with its country code, e.g. +44\u2026"
    shown = text.strip()[:40]
    try:
        number = phonenumbers.parse(text.strip()[:64], region)
    except phonenumbers.NumberParseException:
        raise SubscriberIdError("\u201c{text}\u201d is not a phone number: type the caller's number, {example}.",
                                text=shown, example=example) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == 1:
        raise SubscriberIdError("\u201c{text}\u201d has no country code we know: {example}.", text=shown,
                                example=example)
    if reason in _TOO or not phonenumbers.is_valid_number(number):
        raise SubscriberIdError("\u201c{text}\u201d is {why}: check the caller's number, {example}.", text=shown,
                                why=_TOO.get(reason, "not a number in use"), example=example)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def canonical_subscriber_id(subscriber_id: str, phones: bool, region: str | None) -> str:
    """The id a profile is keyed by: as sent (``subscriber_ids: text``), or the phone
    number in E.164 (``subscriber_ids: phone``); ``SubscriberIdError`` when refused."""
    problem = subscriber_id_problem(subscriber_id)
    if problem is not None:
        raise SubscriberIdError(problem)
    return phone_e164(subscriber_id, region) if phones else subscriber_id


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
