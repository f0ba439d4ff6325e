"""Idempotent creates: the same client id and body replay the stored response.

Flow, one transaction: look the id up (replay, or 409 if the body differs); otherwise run the
action and store its response under the id before committing. A concurrent duplicate blocks on
the action's own unique insert (order id, refund id, transfer key) until the first commits,
fails with an integrity error, and retries: it then finds the stored response. A business
refusal is stored too, in a fresh transaction, so the id stays failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from allegiance.errors import Conflict, DomainError, IdempotencyConflict
from allegiance.tenant import repository

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool


def request_hash(payload: Any) -> str:
    """Hash of the request as parsed JSON with sorted keys (key order and spacing don't count)."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def run_idempotent(
    engine: Engine,
    *,
    tenant_id: str,
    kind: str,
    key: str,
    digest: str,
    now: datetime,
    action: Callable[[Session], tuple[int, dict[str, Any]]],
) -> Outcome:
    last_error: Exception | None = None
    for _ in range(MAX_ATTEMPTS):
        try:
            return _attempt(engine, tenant_id, kind, key, digest, now, action)
        except IntegrityError as exc:  # a concurrent duplicate committed first: look again
            last_error = exc
        except OperationalError as exc:
            if not _is_retryable(exc):
                raise
            last_error = exc
    raise Conflict(
        f"{kind} id {key!r} is being booked by another request; retry with the same id",
        code="concurrent_request",
    ) from last_error


def _attempt(
    engine: Engine,
    tenant_id: str,
    kind: str,
    key: str,
    digest: str,
    now: datetime,
    action: Callable[[Session], tuple[int, dict[str, Any]]],
) -> Outcome:
    with Session(engine, expire_on_commit=False) as session:
        try:
            found = _replay(session, tenant_id, kind, key, digest)
            if found is not None:
                session.rollback()
                return found
            try:
                status, body = action(session)
            except DomainError as refusal:
                session.rollback()
                if getattr(refusal, "recheck", False):
                    with Session(engine) as again:
                        found = _replay(again, tenant_id, kind, key, digest)
                        again.rollback()
                    if found is not None:
                        return found
                return _store_refusal(engine, tenant_id, kind, key, digest, now, refusal)
            _remember(session, tenant_id, kind, key, digest, status, body, now)
            session.commit()
            return Outcome(status, body, False)
        except BaseException:
            session.rollback()
            raise


def _replay(session: Session, tenant_id: str, kind: str, key: str, digest: str) -> Outcome | None:
    record = repository.find_idempotency(session, tenant_id=tenant_id, kind=kind, key=key)
    if record is None:
        return None
    if record.request_hash != digest:
        raise IdempotencyConflict(
            f"{kind} id {key!r} was already used with a different request body",
            errors=[{"loc": ["body", "id"], "msg": "id reused with a different body"}],
        )
    status = record.status_code
    # a create answers 200 when replayed; a refusal answers the same error again
    return Outcome(200 if status == 201 else status, record.response, True)


def _store_refusal(
    engine: Engine,
    tenant_id: str,
    kind: str,
    key: str,
    digest: str,
    now: datetime,
    refusal: DomainError,
) -> Outcome:
    body = refusal.to_problem()
    if refusal.status in (401, 403, 404, 422) or getattr(refusal, "transient", False):
        # not a decision about this request's content: don't pin the id to it
        raise refusal
    with Session(engine, expire_on_commit=False) as session:
        found = _replay(session, tenant_id, kind, key, digest)
        if found is not None:
            session.rollback()
            return found
        _remember(session, tenant_id, kind, key, digest, refusal.status, body, now)
        session.commit()
    raise refusal


def _remember(
    session: Session,
    tenant_id: str,
    kind: str,
    key: str,
    digest: str,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    repository.insert_idempotency(
        session,
        tenant_id=tenant_id,
        kind=kind,
        key=key,
        request_hash=digest,
        status_code=status,
        response=body,
        created_at=now,
    )


def _is_retryable(exc: OperationalError) -> bool:
    text = str(exc.orig) if exc.orig else str(exc)
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text
