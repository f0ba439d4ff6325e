"""Platform connections and what every connector shares: signatures, delivery dedupe, booking.

A platform payload is mapped to the ``/v1`` model (``OrderCreate``, ``RefundCreate``,
``MemberUpsert``) and booked through the order and member services, so the order's own
idempotency applies: an order id, refund id or cancellation is booked at most once, whichever
delivery (or reconciliation run) brings it. Business refusals are recorded as the delivery's
outcome and answered 200: the platform retrying would not change them, and the merchant repairs
them (program, mapping) and re-runs a reconciliation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from allegiance.errors import AlreadyBooked, DomainError, NotFound, Unauthorized, invalid
from allegiance.integration import repository
from allegiance.integration.models import Integration
from allegiance.integration.schemas import SECRET_FIELDS, IntegrationPut, Mapping
from allegiance.kit.ids import new_id
from allegiance.kit.money import currency_exponent, to_minor
from allegiance.member import service as members
from allegiance.member.schemas import MemberUpsert
from allegiance.order import repository as orders_repo
from allegiance.order import service as orders
from allegiance.order.schemas import OrderCreate, RefundCreate, RefundItem
from allegiance.outbox.service import emit
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import require_program

# ---------------------------------------------------------------- configuration


def configure(
    session: Session, *, tenant_id: str, platform: str, data: IntegrationPut, now: datetime
) -> dict[str, Any]:
    """Create or replace a platform connection; secrets left out keep their stored value."""
    existing = repository.get_integration(session, tenant_id, platform)
    secret = data.webhook_secret or (existing.webhook_secret if existing else None)
    if platform in ("shopify", "woocommerce") and not secret:
        raise invalid(["body", "webhook_secret"], f"{platform} signs its webhooks: send the secret")
    credentials = dict(existing.credentials) if existing else {}
    for name in SECRET_FIELDS:
        value = getattr(data, name)
        if value:
            credentials[name] = value
    repository.save_integration(
        session,
        {
            "tenant_id": tenant_id,
            "platform": platform,
            "webhook_secret": secret,
            "shop_domain": data.shop_domain,
            "api_url": data.api_url.rstrip("/") if data.api_url else None,
            "credentials": credentials,
            "mapping": data.mapping.model_dump(mode="json"),
            "created_at": existing.created_at if existing else now,
            "updated_at": now,
        },
    )
    session.flush()
    session.expire_all()
    return integration_view(session, tenant_id=tenant_id, platform=platform)


def get_integration(session: Session, *, tenant_id: str, platform: str) -> Integration:
    found = repository.get_integration(session, tenant_id, platform)
    if found is None:
        raise NotFound(f"{platform} is not connected", code="integration_not_found")
    return found


def mask(secret: str | None) -> str | None:
    """Enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) >= 16 else "****"


def integration_view(session: Session, *, tenant_id: str, platform: str) -> dict[str, Any]:
    found = get_integration(session, tenant_id=tenant_id, platform=platform)
    return {
        "platform": platform,
        "webhook_url": f"/integrations/{platform}/{tenant_id}",
        "webhook_secret": mask(found.webhook_secret),
        "shop_domain": found.shop_domain,
        "api_url": found.api_url,
        **{name: mask(found.credentials.get(name)) for name in SECRET_FIELDS},
        "mapping": Mapping.model_validate(found.mapping).model_dump(mode="json"),
        "created_at": found.created_at,
        "updated_at": found.updated_at,
    }


def disconnect(session: Session, *, tenant_id: str, platform: str) -> None:
    if not repository.delete_integration(session, tenant_id, platform):
        raise NotFound(f"{platform} is not connected", code="integration_not_found")


# ---------------------------------------------------------------- inbound deliveries


class BadSignature(Unauthorized):
    code = "invalid_signature"


def signature_of(secret: str, raw: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body, as Shopify and WooCommerce sign."""
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def signed_integration(
    session: Session, *, tenant_id: str, platform: str, raw: bytes, signature: str | None
) -> Integration:
    """The connection whose secret signed ``raw``. Unknown tenants, unconnected platforms and
    bad signatures get the same answer: nothing tells a caller which one it was."""
    found = repository.get_integration(session, tenant_id, platform)
    secret = found.webhook_secret if found is not None else None
    # always compute a digest, so the three cases take about the same time
    expected = signature_of(secret or "-", raw)
    given = (signature or "").strip()
    if found is None or not secret or not hmac.compare_digest(expected.encode(), given.encode()):
        raise BadSignature(
            "the webhook signature is missing or does not match",
            errors=[{"loc": ["header", "signature"], "msg": "missing or does not match"}],
        )
    return found


def parse_body(raw: bytes) -> Any:
    """JSON with exact numbers: integers stay integers of any size, decimals become Decimal."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise DomainError(
            "the request body is not valid JSON",
            code="malformed_json",
            status=400,
            errors=[{"loc": ["body"], "msg": str(exc)[:200]}],
        ) from exc


@dataclass
class Context:
    """One delivery's (or one reconciled record's) surroundings."""

    tenant_id: str
    platform: str
    mapping: Mapping
    now: datetime
    _program: CompiledProgram | None = None

    def program(self, session: Session) -> CompiledProgram:
        if self._program is None:
            self._program = require_program(session, tenant_id=self.tenant_id)
        return self._program

    def order_id(self, platform_id: Any) -> str:
        return f"{self.mapping.order_id_prefix}{platform_id}"


@dataclass
class Result:
    """What one payload did: ``outcome`` is a stable word, ``detail`` says about what."""

    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)
    booked: int = 0  # orders, refunds and cancellations newly booked


def combine(steps: list[Result]) -> Result:
    """One answer for a payload that did several things (an order and its refunds)."""
    if len(steps) == 1:
        return steps[0]
    booked = sum(step.booked for step in steps)
    failed = [step for step in steps if step.outcome == "failed"]
    if failed:
        outcome = "failed"
    elif booked:
        outcome = next(step.outcome for step in steps if step.booked)
    else:
        outcome = steps[0].outcome
    return Result(
        outcome, {"steps": [{"outcome": s.outcome, **s.detail} for s in steps]}, booked=booked
    )


def context_of(integration: Integration, now: datetime) -> Context:
    return Context(
        tenant_id=integration.tenant_id,
        platform=integration.platform,
        mapping=Mapping.model_validate(integration.mapping),
        now=now,
    )


def claim_deliveries(
    session: Session, *, ctx: Context, delivery_ids: list[str], topic: str
) -> bool:
    """Record delivery ids as seen; False when any of them was seen before."""
    for delivery_id in delivery_ids:
        row = {
            "tenant_id": ctx.tenant_id,
            "platform": ctx.platform,
            "delivery_id": delivery_id[:255],
            "topic": topic[:100],
            "outcome": "received",
            "detail": {},
            "received_at": ctx.now,
        }
        if not repository.insert_delivery_if_new(session, row):
            return False
    return True


def record_outcome(
    session: Session, *, ctx: Context, delivery_ids: list[str], result: Result
) -> None:
    for delivery_id in delivery_ids:
        repository.set_delivery_outcome(
            session,
            tenant_id=ctx.tenant_id,
            platform=ctx.platform,
            delivery_id=delivery_id[:255],
            outcome=result.outcome,
            detail=_jsonable(result.detail),
        )


def deliveries(
    session: Session, *, tenant_id: str, platform: str, limit: int
) -> list[dict[str, Any]]:
    return [
        {
            "delivery_id": d.delivery_id,
            "topic": d.topic,
            "outcome": d.outcome,
            "detail": d.detail,
            "received_at": d.received_at,
        }
        for d in repository.list_deliveries(session, tenant_id, platform, limit)
    ]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ---------------------------------------------------------------- booking


def failure(exc: DomainError | ValidationError) -> Result:
    if isinstance(exc, ValidationError):
        errors = [
            {"loc": list(e["loc"]), "msg": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors(include_url=False)
        ]
        return Result(
            "failed", {"code": "validation_error", "reason": "payload not mapped", "errors": errors}
        )
    return Result("failed", {"code": exc.code, "reason": exc.detail, "errors": exc.errors or []})


def mapped(session: Session, action: Callable[[], Result]) -> Result:
    """Map and book one record: a payload that does not map, or a business refusal, becomes
    a ``failed`` result. Booking steps run in savepoints (see ``guarded``)."""
    try:
        return action()
    except (DomainError, ValidationError) as exc:
        if isinstance(exc, DomainError) and exc.status == 503:
            raise
        return failure(exc)


UNBOOKED_CANCELLED = "cancelled before it was booked: a later booking of it is ignored"


def guarded(session: Session, action: Callable[[], Result]) -> Result:
    """Run one booking step in a savepoint; a business refusal becomes a ``failed`` result
    and leaves nothing behind, so the other steps of the payload still count."""
    try:
        with session.begin_nested():
            return action()
    except (DomainError, ValidationError) as exc:
        if isinstance(exc, DomainError) and exc.status == 503:
            raise
        return failure(exc)


def book_order(session: Session, ctx: Context, order: OrderCreate) -> Result:
    """Book an order once; an id booked before (by any path) is a duplicate, and an order its
    platform cancelled before it was booked here is not booked at all."""
    repository.lock_order_id(session, ctx.tenant_id, order.id)
    if orders_repo.get_order(session, ctx.tenant_id, order.id) is not None:
        return Result("duplicate", {"order_id": order.id})
    if repository.cancelled_before_booking(session, ctx.tenant_id, order.id):
        return Result("ignored", {"order_id": order.id, "reason": UNBOOKED_CANCELLED})

    def action() -> Result:
        program = ctx.program(session)
        prepared = orders.prepare_order(program, order, order_id=order.id, now=ctx.now)
        try:
            response = orders.create_order(
                session, tenant_id=ctx.tenant_id, program=program, order=prepared, now=ctx.now
            )
        except AlreadyBooked:  # a concurrent delivery booked it first
            return Result("duplicate", {"order_id": order.id})
        earned = [
            e for e in response["effects"] if e.get("type") in ("points_earned", "points_pending")
        ]
        return Result(
            "booked",
            {"order_id": order.id, "member_id": order.member_id, "effects": earned},
            booked=1,
        )

    return guarded(session, action)


def refund_order(
    session: Session,
    ctx: Context,
    *,
    order_id: str,
    refund_id: str,
    amount: Decimal | None = None,
    items: list[RefundItem] | None = None,
    reason: str | None = None,
) -> Result:
    """Book a refund once. Platforms' refunds do not always add up: a refund larger than what
    is left of the order is booked for what is left."""
    if orders_repo.refund_exists(session, ctx.tenant_id, refund_id):
        return Result("duplicate", {"refund_id": refund_id})
    booked = orders_repo.get_order(session, ctx.tenant_id, order_id)
    if booked is None:
        return Result("order_not_booked", {"order_id": order_id, "refund_id": refund_id})
    if booked.status == "cancelled":
        return Result(
            "ignored", {"order_id": order_id, "refund_id": refund_id, "reason": "order cancelled"}
        )

    def action() -> Result:
        program = ctx.program(session)
        exponent = currency_exponent(program.currency)
        remaining = booked.total_minor - booked.refunded_minor
        wanted = (
            amount if amount is not None else sum((item.amount for item in items or []), Decimal(0))
        )
        wanted_minor = to_minor(quantize(wanted, exponent), exponent)
        if items and wanted_minor <= remaining:
            refund = RefundCreate(id=refund_id, items=items, reason=reason)
        else:
            clamped = min(wanted_minor, remaining)
            refund = RefundCreate(
                id=refund_id, amount=Decimal(clamped).scaleb(-exponent), reason=reason
            )
        response = orders.refund_order(
            session,
            tenant_id=ctx.tenant_id,
            program=program,
            order_id=order_id,
            refund=refund,
            now=ctx.now,
        )
        return Result(
            "refunded",
            {"order_id": order_id, "refund_id": refund_id, "effects": response.get("effects", [])},
            booked=1,
        )

    return guarded(session, action)


def cancel_order(session: Session, ctx: Context, *, order_id: str, reason: str | None) -> Result:
    repository.lock_order_id(session, ctx.tenant_id, order_id)
    booked = orders_repo.get_order(session, ctx.tenant_id, order_id)
    if booked is None:
        # remembered, so that a "paid" delivery arriving late does not book it after all
        repository.remember_cancellation(
            session,
            {
                "tenant_id": ctx.tenant_id,
                "order_id": order_id,
                "platform": ctx.platform,
                "reason": reason,
                "received_at": ctx.now,
            },
        )
        return Result("ignored", {"order_id": order_id, "reason": UNBOOKED_CANCELLED})
    if booked.status == "cancelled":
        return Result("duplicate", {"order_id": order_id})

    def action() -> Result:
        response = orders.cancel_order(
            session,
            tenant_id=ctx.tenant_id,
            program=ctx.program(session),
            order_id=order_id,
            reason=reason,
            now=ctx.now,
        )
        return Result(
            "cancelled", {"order_id": order_id, "effects": response.get("effects", [])}, booked=1
        )

    return guarded(session, action)


def upsert_member(session: Session, ctx: Context, *, member_id: str, data: MemberUpsert) -> Result:
    def action() -> Result:
        _, created = members.upsert_member(
            session, tenant_id=ctx.tenant_id, member_id=member_id, data=data, now=ctx.now
        )
        return Result("member_created" if created else "member_updated", {"member_id": member_id})

    return guarded(session, action)


# ---------------------------------------------------------------- privacy requests


def record_access_request(
    session: Session, ctx: Context, *, member_id: str, platform_request_id: str | None
) -> Result:
    """Keep everything we hold about the member for the merchant to fetch and hand over."""
    try:
        export = members.export_member(session, tenant_id=ctx.tenant_id, member_id=member_id)
        status = "completed"
    except NotFound:
        export, status = None, "member_unknown"
    request_id = _record_request(
        session, ctx, kind="access", member_id=member_id, status=status,
        platform_request_id=platform_request_id, export=_jsonable(export) if export else None,
    )  # fmt: skip
    return Result(
        "data_request_recorded",
        {"request_id": request_id, "member_id": member_id, "request_status": status},
    )


def erase_member(
    session: Session, ctx: Context, *, member_id: str, platform_request_id: str | None
) -> Result:
    """Erase the member's personal data (ledger totals stay) and exports made for it."""
    try:
        members.erase_member(session, tenant_id=ctx.tenant_id, member_id=member_id, now=ctx.now)
        status = "completed"
    except NotFound:
        status = "member_unknown"
    repository.drop_exports(session, ctx.tenant_id, member_id)
    request_id = _record_request(
        session, ctx, kind="erasure", member_id=member_id, status=status,
        platform_request_id=platform_request_id, export=None,
    )  # fmt: skip
    return Result(
        "member_erased",
        {"request_id": request_id, "member_id": member_id, "request_status": status},
    )


def erase_all_members(session: Session, ctx: Context) -> Result:
    """The shop left: record a shop erasure. The ``data_erasures`` job erases every member's
    personal data in batches (the platform waits a few seconds for an answer, a large shop has
    more members than that allows). The exports made for the shop go at once. A second request
    while one is in progress is the same request."""
    repository.drop_exports(session, ctx.tenant_id, None)
    running = repository.shop_erasure_in_progress(session, ctx.tenant_id, ctx.platform)
    request_id = running or _record_request(
        session, ctx, kind="shop_erasure", member_id=None, status="in_progress",
        platform_request_id=None, export=None,
    )  # fmt: skip
    return Result(
        "shop_erasure_started",
        {
            "request_id": request_id,
            "members_to_erase": repository.count_members_to_erase(session, ctx.tenant_id),
        },
    )


def erase_members_page(session: Session, tenant_id: str, now: datetime, limit: int) -> int:
    """Erase up to ``limit`` members not erased yet (id order); returns how many."""
    page = repository.members_to_erase(session, tenant_id, "", limit)
    for member_id in page:
        members.erase_member(session, tenant_id=tenant_id, member_id=member_id, now=now)
    return len(page)


def _record_request(
    session: Session,
    ctx: Context,
    *,
    kind: str,
    member_id: str | None,
    status: str,
    platform_request_id: str | None,
    export: dict[str, Any] | None,
) -> str:
    request_id = new_id("dsr")
    repository.insert_data_request(
        session,
        tenant_id=ctx.tenant_id,
        request_id=request_id,
        platform=ctx.platform,
        kind=kind,
        member_id=member_id,
        platform_request_id=platform_request_id,
        status=status,
        export=export,
        received_at=ctx.now,
    )
    emit(
        session,
        tenant_id=ctx.tenant_id,
        type_="integration.data_request_received",
        data={
            "request_id": request_id,
            "platform": ctx.platform,
            "kind": kind,
            "member_id": member_id,
            "status": status,
        },
        now=ctx.now,
    )
    return request_id


def data_request_view(request: Any, *, with_export: bool) -> dict[str, Any]:
    view = {
        "request_id": request.request_id,
        "platform": request.platform,
        "kind": request.kind,
        "member_id": request.member_id,
        "platform_request_id": request.platform_request_id,
        "status": request.status,
        "received_at": request.received_at,
    }
    if with_export:
        view["export"] = request.export
    return view


def list_data_requests(
    session: Session, *, tenant_id: str, platform: str, limit: int
) -> list[dict[str, Any]]:
    return [
        data_request_view(r, with_export=False)
        for r in repository.list_data_requests(session, tenant_id, platform, limit)
    ]


def get_data_request(session: Session, *, tenant_id: str, request_id: str) -> dict[str, Any]:
    found = repository.get_data_request(session, tenant_id, request_id)
    if found is None:
        raise NotFound(f"data request {request_id!r} not found", code="data_request_not_found")
    return data_request_view(found, with_export=True)


# ---------------------------------------------------------------- money and ids


def decimal(value: Any, loc: str) -> Decimal:
    """A platform money value (string, int or Decimal; never a float) as a Decimal."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool | float):
        raise invalid(["body", loc], "money must be a decimal string or number")
    try:
        found = Decimal(str(value))
    except InvalidOperation as exc:
        raise invalid(["body", loc], f"not a decimal amount: {str(value)[:40]!r}") from exc
    if not found.is_finite():
        raise invalid(["body", loc], "not a finite amount")
    return found


def quantize(value: Decimal, exponent: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def platform_id(value: Any) -> str | None:
    """A platform id as text, exactly: integers of any size, or non-empty strings."""
    if value is None or isinstance(value, bool) or value == 0 or value == "":
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


# ---------------------------------------------------------------- one inbound delivery


@dataclass(frozen=True)
class Inbound:
    """A webhook request as received: the raw body and the headers (lower-case names)."""

    platform: str
    tenant_id: str
    raw: bytes
    headers: dict[str, str]
    now: datetime
    caller_tenant_id: str | None = None  # Magento: the tenant of the Bearer ingest key


def is_woocommerce_ping(inbound: Inbound) -> bool:
    """Saving a webhook in WooCommerce posts an unsigned form ``webhook_id=N`` that wants 200."""
    return inbound.platform == "woocommerce" and _PING.fullmatch(inbound.raw.strip()) is not None


_PING = re.compile(rb"webhook_id=\d{1,20}")


def _authenticated(session: Session, inbound: Inbound) -> Integration:
    h = inbound.headers
    if inbound.platform == "magento":
        if inbound.caller_tenant_id != inbound.tenant_id:
            raise Unauthorized("the API key is not valid", code="invalid_api_key")
        return get_integration(session, tenant_id=inbound.tenant_id, platform="magento")
    header = "x-shopify-hmac-sha256" if inbound.platform == "shopify" else "x-wc-webhook-signature"
    found = signed_integration(
        session,
        tenant_id=inbound.tenant_id,
        platform=inbound.platform,
        raw=inbound.raw,
        signature=h.get(header),
    )
    domain = h.get("x-shopify-shop-domain")
    if (
        inbound.platform == "shopify"
        and found.shop_domain
        and domain
        and domain != found.shop_domain
    ):
        raise BadSignature("the webhook comes from another shop")
    return found


def _delivery_ids(inbound: Inbound) -> list[str]:
    if inbound.platform != "shopify":
        # WooCommerce's delivery id changes on every send and Magento has none: their
        # duplicates are caught by the business ids
        return []
    ids = []
    if inbound.headers.get("x-shopify-webhook-id"):
        ids.append("webhook:" + inbound.headers["x-shopify-webhook-id"].strip())
    if inbound.headers.get("x-shopify-event-id"):
        ids.append("event:" + inbound.headers["x-shopify-event-id"].strip())
    return ids


def _topic(inbound: Inbound) -> str:
    h = inbound.headers
    if inbound.platform == "shopify":
        return h.get("x-shopify-topic", "").strip()
    if inbound.platform == "woocommerce":
        return h.get("x-wc-webhook-topic", "").strip()
    return h.get("x-magento-topic", "orders").strip() or "orders"


def receive(session: Session, inbound: Inbound) -> Result:
    """Authenticate, dedupe and apply one webhook delivery (nothing is written before the
    signature has been checked)."""
    from allegiance.integration.magento import service as magento
    from allegiance.integration.shopify import service as shopify
    from allegiance.integration.woocommerce import service as woocommerce

    integration = _authenticated(session, inbound)
    payload = parse_body(inbound.raw)
    ctx = context_of(integration, inbound.now)
    topic = _topic(inbound)
    if not topic:
        raise invalid(["header", "topic"], "the topic header is missing")
    delivery_ids = _delivery_ids(inbound)
    if not claim_deliveries(session, ctx=ctx, delivery_ids=delivery_ids, topic=topic):
        return Result("duplicate", {"delivery_ids": delivery_ids})
    if inbound.platform == "shopify":
        result = shopify.handle(session, ctx, topic, payload)
    elif inbound.platform == "woocommerce":
        result = woocommerce.handle(session, ctx, topic, payload)
    else:
        result = magento.handle(session, ctx, payload)
    record_outcome(session, ctx=ctx, delivery_ids=delivery_ids, result=result)
    return result
