"""Use cases for the program document: validate, apply (new version), read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.analytics import activity
from allegiance.earning.service import prepare_counters
from allegiance.errors import NotFound, ValidationFailed
from allegiance.ledger.service import open_system_accounts
from allegiance.program import compiled as cache
from allegiance.program.compiled import CompiledProgram, compile_program
from allegiance.program.schema import Program
from allegiance.program.validate import validate_program
from allegiance.tenant import repository


def check_program(document: Any) -> Program:
    """Validate fully; raise a 422 listing every located error."""
    program, errors = validate_program(document)
    if program is None:
        raise ValidationFailed(
            f"the program document has {len(errors)} error(s)",
            code="invalid_program",
            errors=[{"loc": err["loc"], "msg": err["msg"]} for err in errors],
        )
    return program


def apply_program(
    session: Session, *, tenant_id: str, document: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Store the document as the tenant's next version and make it current."""
    program = check_program(document)
    prepare_counters(session, tenant_id=tenant_id, program=program)
    open_system_accounts(session, tenant_id=tenant_id, program=program)
    repository.lock_tenant_program(session, tenant_id)
    previous = load_program(session, tenant_id=tenant_id)
    version = repository.max_program_version(session, tenant_id) + 1
    repository.insert_program_version(
        session, tenant_id=tenant_id, version=version, document=document, now=now
    )
    activity.program_applied(
        session,
        tenant_id=tenant_id,
        timezone=program.timezone,
        previous_timezone=previous.program.timezone if previous is not None else None,
        now=now,
    )
    return {"version": version, **document}


def current_document(session: Session, *, tenant_id: str) -> dict[str, Any]:
    version = repository.current_program_version(session, tenant_id)
    if version is None:
        raise NotFound("no program has been applied yet", code="program_not_found")
    document = repository.get_program_document(session, tenant_id, version)
    assert document is not None
    return {"version": version, **document}


def list_versions(session: Session, *, tenant_id: str) -> list[dict[str, Any]]:
    return [
        {"version": version, "created_at": created.isoformat()}
        for version, created in repository.list_program_versions(session, tenant_id)
    ]


def load_program(session: Session, *, tenant_id: str) -> CompiledProgram | None:
    """The tenant's current program, compiled (cached per version); None before the first."""
    version = repository.current_program_version(session, tenant_id)
    if version is None:
        return None
    found = cache.cached(tenant_id, version)
    if found is not None:
        return found
    document = repository.get_program_document(session, tenant_id, version)
    assert document is not None
    compiled = compile_program(Program.model_validate(document), version)
    cache.remember(tenant_id, compiled)
    return compiled


def require_program(session: Session, *, tenant_id: str) -> CompiledProgram:
    found = load_program(session, tenant_id=tenant_id)
    if found is None:
        raise ProgramMissing(
            "apply a program (PUT /v1/program) before sending orders and events",
        )
    return found


class ProgramMissing(NotFound):
    """Refused until a program exists; not pinned to the client id, a retry may succeed."""

    status = 409
    code = "program_not_found"
    transient = True
