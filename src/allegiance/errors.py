"""Domain errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure with a stable snake_case ``code`` and an HTTP status.

    422 is kept for payloads that are malformed; business refusals use 409 (or 404/403).
    """

    status: int = 409
    code: str = "conflict"
    title: str = "Request refused"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        self.errors = errors
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://allegiance.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = "Invalid request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Insufficient points"


class AlreadyBooked(Conflict):
    """The business id exists already. A concurrent duplicate may have just committed it, so
    the idempotency layer looks for that request's response before answering with this."""

    code = "already_booked"
    transient = True
    recheck = True


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "Idempotency key reused with a different request"


def invalid(loc: list[str | int], msg: str, *, detail: str | None = None) -> ValidationFailed:
    """A 422 for one located problem, e.g. ``invalid(["body", "wallet"], "unknown wallet")``."""
    return ValidationFailed(detail or msg, errors=[{"loc": loc, "msg": msg}])
