"""What the API answers, as types. Handlers encode their answers through these Structs
(``struct_response``), and the OpenAPI document (``bandit.http.openapi``) is generated
from them, so the document cannot say one thing while the service sends another; the
schemathesis run (tests/test_openapi.py) checks every answer against the document.

Fields whose value may be left out carry a default and ``omit_defaults`` leaves them
out; a field that is sent as ``null`` has no default and is typed ``... | None``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from aiohttp import web

from bandit.decide.schemas import FeatureMap, Identifier
from policies.offers import OfferId, OfferSpec

Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]
SlotNumber = Annotated[int, msgspec.Meta(ge=1)]
_JSON = "application/json"
_encoder = msgspec.json.Encoder()


def struct_response(body: msgspec.Struct, status: int = 200) -> web.Response:
    """Encode an answer through its Struct (the documented shape)."""
    return web.Response(body=_encoder.encode(body), status=status, content_type=_JSON)


class Slot(msgspec.Struct, forbid_unknown_fields=True):
    """One shown offer: ``probability`` is exactly the chance it was drawn, given the
    slots before it (the logged propensity)."""

    slot: SlotNumber
    offer_id: OfferId
    probability: Probability


class Ranked(msgspec.Struct, forbid_unknown_fields=True):
    offer_id: OfferId
    probability: Probability


class Excluded(msgspec.Struct, forbid_unknown_fields=True):
    """Why an offer was left out (with ``explain``)."""

    offer_id: OfferId
    reason: Literal["disabled", "channel", "validity", "owned", "rule", "cap", "contact"]
    detail: str


class DecideResponse(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A decision. ``event_id`` is null when no offer was eligible (nothing served or
    logged); ``ranking`` is the deprecated one-slot view of ``slots``."""

    event_id: Union[Identifier, None]
    slots: list[Slot]
    ranking: list[Ranked]
    model_version: str
    policy: Union[Literal["model", "control"], None] = None
    subscriber_known: Union[bool, None] = None   # left out when no subscriber_id was given
    catalog_version: Union[int, None] = None     # left out for inline offers
    excluded: Union[list[Excluded], None] = None   # only with explain


class RewardResponse(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``reward``: what the slot holds after this request (the first one, or the running sum)."""

    event_id: Identifier
    status: Literal["joined", "duplicate", "stored", "accumulated"]
    duplicate: bool
    reward: Union[float, None] = None


class ActivateResponse(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Identifier
    status: Literal["joined", "activated", "already"]


class EventSlot(msgspec.Struct, forbid_unknown_fields=True):
    slot: SlotNumber
    offer_id: Union[str, None]   # null for events of the one-slot release
    rewards: Annotated[int, msgspec.Meta(ge=0)]
    reward: Union[float, None]


class EventState(msgspec.Struct, forbid_unknown_fields=True):
    """A dropped event shows ``reward: null``: it is never learned, the default included."""

    event_id: str
    state: Literal["pending", "joined", "defaulted", "dropped", "unknown"]
    deferred: bool
    activated: bool
    rewards: Annotated[int, msgspec.Meta(ge=0)]
    reward: Union[float, None]
    deadline_ms: Union[int, None]
    slots: list[EventSlot]


class ModelStats(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    examples_learned: int
    checkpoint_version: int
    checkpoint_examples: int
    checkpoint_age_seconds: Union[float, None]
    args: str


class LearnerStats(msgspec.Struct, forbid_unknown_fields=True):
    leading: bool
    identity: str
    problem: Union[str, None]


class StatsResponse(msgspec.Struct, forbid_unknown_fields=True):
    counters: dict[str, int]
    pending: int
    stream_length: int
    model: ModelStats
    learner: LearnerStats


class OfferList(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    offers: list[OfferSpec]


class OfferChanged(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    offer: OfferSpec


class OfferDeleted(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    deleted: OfferId


class Profile(msgspec.Struct, forbid_unknown_fields=True):
    subscriber_id: str
    profile: FeatureMap


class ProfileDeleted(msgspec.Struct, forbid_unknown_fields=True):
    subscriber_id: str
    deleted: Literal[True]


class Health(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["ok"]


class Ready(msgspec.Struct, forbid_unknown_fields=True):
    """``backlog``: joined events not yet logged or learned (503 ``backlog_full`` past ``backlog_limit``)."""

    status: Literal["ready"]
    model_version: str
    backlog: int | None   # None: not read yet


class SessionInfo(msgspec.Struct, forbid_unknown_fields=True):
    """``open``: no API keys are configured; send ``csrf_token`` in ``csrf_header``."""

    open: bool
    name: Union[str, None]
    scopes: list[Literal["admin", "channel", "profiles"]]
    csrf_token: str
    csrf_header: str
    home: str


class SignedOut(msgspec.Struct, forbid_unknown_fields=True):
    signed_out: Literal[True]


class OfferCard(msgspec.Struct, forbid_unknown_fields=True):
    """An offer as the agent desktop shows it: ``slot`` is null for a runner-up that was
    not shown (one-slot deployments); ``why`` are the reasons, in the caller's language."""

    rank: SlotNumber
    slot: Union[SlotNumber, None]
    offer_id: OfferId
    served: bool
    probability: Probability
    policy: str
    name: str
    description: str
    terms: str
    category: str
    value: Union[float, None]
    why: list[str]
    acceptance: Union[Probability, None] = None   # the model's expected chance of a yes (docs/ui.md)
    expected_value: Union[float, None] = None      # acceptance × value


class ExcludedCard(msgspec.Struct, forbid_unknown_fields=True):
    offer_id: OfferId
    reason: str
    detail: str
    name: str


class AgentDecision(msgspec.Struct, forbid_unknown_fields=True):
    """The desktop's decision; ``event_id`` (and ``policy``) null when no offer was eligible."""

    event_id: Union[Identifier, None]
    subscriber_id: str
    policy: Union[Literal["model", "control"], None]
    model_version: str
    catalog_version: Union[int, None]
    subscriber_known: Union[bool, None]
    eligible: Annotated[int, msgspec.Meta(ge=0)]
    excluded_count: Annotated[int, msgspec.Meta(ge=0)]
    offers: list[OfferCard]
    excluded: list[ExcludedCard]
    learned: Annotated[int, msgspec.Meta(ge=0)] = 0   # answers the model has learned from (its estimates' footing)


class CallerCard(msgspec.Struct, forbid_unknown_fields=True):
    """Who is calling: ``profile`` is null for an unknown caller; ``contacts`` are the
    desktop's recent ones, newest first (their fields: docs/ui.md)."""

    subscriber_id: str
    known: bool
    profile: Union[dict[str, Any], None]
    service_names: dict[str, str]   # the profile's services that are catalog offers → their names
    contacts: list[dict[str, Any]]


class CallReason(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    label: str   # in the page's language (Accept-Language or ?lang=)


class CallReasons(msgspec.Struct, forbid_unknown_fields=True):
    """The catalog's call reasons and decline reasons (a Decline's optional "why"), in its order."""

    reasons: list[CallReason]
    decline_reasons: list[CallReason] = []
    not_now_posted: bool = False   # the settings have a ``not_now`` outcome: "Not now" is posted as it


# The dashboard's answers (docs/ui.md): their shape follows the page and is documented there.
UiAnswer = dict[str, Any]

