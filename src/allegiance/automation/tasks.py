"""Automation jobs: scheduled triggers (birthdays, anniversaries, dates, expiring points)
and the execution of due runs. Both work in bounded batches, one transaction each."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.automation import actions, repository
from allegiance.automation.models import AutomationRun
from allegiance.automation.schemas import Automation
from allegiance.automation.service import fire
from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.email.delivery import DeliveryError, deliver
from allegiance.kit.money import number
from allegiance.member.models import Member
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program

log = logging.getLogger("allegiance.automation")
MAX_BACKOFF = timedelta(hours=6)


# ---------------------------------------------------------------- executing runs


def execute_due(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Execute the runs due by ``now``, a bounded batch per transaction (SKIP LOCKED on
    Postgres: two workers never take the same run). A failing run is retried with backoff
    and marked ``failed`` after ``ALLEGIANCE_AUTOMATION_MAX_ATTEMPTS``."""
    batch = get_settings().job_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            compiled = load_program(session, tenant_id=tenant_id)
            if compiled is None:
                return handled
            runs = repository.claim_due(session, tenant_id, now, batch)
            for run in runs:
                execute_run(session, compiled=compiled, run=run, now=now)
        handled += len(runs)
        if len(runs) < batch:
            return handled


def execute_run(
    session: Session, *, compiled: CompiledProgram, run: AutomationRun, now: datetime
) -> None:
    """One run: every action in a savepoint, then the e-mails; any failure undoes the
    run's database changes and schedules a retry."""
    automation = next(
        (a for a in compiled.program.automations if a.key == run.automation_key), None
    )
    if automation is None or not automation.enabled:
        _finish(run, "skipped", now, error="the automation is no longer in the program")
        return
    member = repository.get_member(session, run.tenant_id, run.member_id) if run.member_id else None
    run.attempts += 1
    try:
        with session.begin_nested():
            results, outgoing = actions.execute(
                session,
                compiled=compiled,
                run=run,
                actions=automation.actions,
                member=member,
                now=now,
            )
            for message in outgoing:
                deliver(message)
    except (actions.ActionFailed, DeliveryError) as exc:
        _retry_or_fail(run, str(exc), now)
        return
    except Exception as exc:  # a bug must not block the other runs of the batch
        log.exception("automation run %s failed", run.id)
        _retry_or_fail(run, f"internal error: {type(exc).__name__}", now)
        return
    _finish(run, "done", now, result=results)


def _finish(
    run: AutomationRun,
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    result: list[dict[str, Any]] | None = None,
) -> None:
    run.status = status
    run.error = error
    run.result = result
    run.finished_at = now


def _retry_or_fail(run: AutomationRun, error: str, now: datetime) -> None:
    run.error = error[:1000]
    if run.attempts >= get_settings().automation_max_attempts:
        run.status = "failed"
        run.finished_at = now
    else:
        run.due_at = now + min(timedelta(minutes=2 ** (run.attempts - 1)), MAX_BACKOFF)


# ---------------------------------------------------------------- scheduled triggers


def scan_scheduled(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Start the runs of scheduled triggers for the program's local day of ``now``.

    Each kind scans once per local day and program version (a mark records the finished
    scan); run keys make a repeated scan harmless. Returns the runs started."""
    with read_session(engine) as session:
        compiled = load_program(session, tenant_id=tenant_id)
    if compiled is None:
        return 0
    by_kind: dict[str, list[Automation]] = {}
    for automation in compiled.program.automations:
        if automation.enabled:
            by_kind.setdefault(automation.trigger.kind, []).append(automation)
    today = now.astimezone(compiled.tz).date()
    started = 0
    for kind, scan in (
        ("birthday", _scan_birthdays),
        ("anniversary", _scan_anniversaries),
        ("date", _scan_dates),
        ("points_expiring", _scan_expiring),
    ):
        automations = by_kind.get(kind)
        if not automations:
            continue
        scan_key = f"{kind}:{today.isoformat()}:v{compiled.version}"
        with read_session(engine) as session:
            if repository.has_mark(session, tenant_id, "scan", scan_key):
                continue
        started += scan(engine, tenant_id, compiled, automations, today, now)
        with write_session(engine) as session:
            repository.add_mark(session, tenant_id, "scan", scan_key, now)
    return started


def _same_day(month: int, day: int, today: date) -> bool:
    """February 29 is celebrated on February 28 in other years."""
    if (month, day) == (today.month, today.day):
        return True
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return (month, day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


def _month_days(today: date, spread: int) -> list[str]:
    days = {(today + timedelta(days=d)).strftime("%m-%d") for d in range(-spread, spread + 1)}
    if (today.month, today.day) == (2, 28):
        days.add("02-29")
    return sorted(days)


def _member_pages(engine: Engine, tenant_id: str, fetch: Any, handle: Any) -> int:
    """Page through members (``fetch(session, after_id, limit)``), one transaction per page."""
    batch = get_settings().job_batch_size
    after: str | None = None
    started = 0
    while True:
        with write_session(engine) as session:
            page: list[Member] = fetch(session, after, batch)
            for member in page:
                started += handle(session, member)
        if len(page) < batch:
            return started
        after = page[-1].member_id


def _occasion(
    session: Session,
    compiled: CompiledProgram,
    tenant_id: str,
    automations: list[Automation],
    member: Member,
    *,
    event_type: str | None,
    key: str,
    data: dict[str, Any],
    now: datetime,
) -> int:
    """Announce a member's occasion once (domain event) and start its automations' runs."""
    if event_type is not None and repository.add_mark(session, tenant_id, event_type, key, now):
        outbox.emit(session, tenant_id=tenant_id, type_=event_type, data=data, now=now)
    trigger = {"type": event_type or "date", "id": key, "created_at": now.isoformat(), "data": data}
    return sum(
        fire(
            session,
            compiled=compiled,
            tenant_id=tenant_id,
            automation=a,
            member=member,
            trigger_key=key,
            trigger=trigger,
            now=now,
        )
        for a in automations
    )


def _scan_birthdays(
    engine: Engine,
    tenant_id: str,
    compiled: CompiledProgram,
    automations: list[Automation],
    today: date,
    now: datetime,
) -> int:
    days = _month_days(today, 0)

    def fetch(session: Session, after: str | None, limit: int) -> list[Member]:
        return repository.members_on_days(
            session, tenant_id, column="birthdate", month_days=days, after_id=after, limit=limit
        )

    def handle(session: Session, member: Member) -> int:
        born = member.birthdate
        if born is None or not _same_day(born.month, born.day, today):
            return 0
        data = {
            "member_id": member.member_id,
            "birthdate": born.isoformat(),
            "date": today.isoformat(),
        }
        return _occasion(
            session, compiled, tenant_id, automations, member,
            event_type="member.birthday", key=f"{member.member_id}:birthday:{today.year}",
            data=data, now=now,
        )  # fmt: skip

    return _member_pages(engine, tenant_id, fetch, handle)


def _scan_anniversaries(
    engine: Engine,
    tenant_id: str,
    compiled: CompiledProgram,
    automations: list[Automation],
    today: date,
    now: datetime,
) -> int:
    days = _month_days(today, 1)  # enrolled_at is compared in the program's zone below

    def fetch(session: Session, after: str | None, limit: int) -> list[Member]:
        return repository.members_on_days(
            session, tenant_id, column="enrolled_at", month_days=days, after_id=after, limit=limit
        )

    def handle(session: Session, member: Member) -> int:
        enrolled = member.enrolled_at.astimezone(compiled.tz).date()
        years = today.year - enrolled.year
        if years < 1 or not _same_day(enrolled.month, enrolled.day, today):
            return 0
        data = {
            "member_id": member.member_id,
            "enrolled_at": member.enrolled_at.isoformat(),
            "years": years,
            "date": today.isoformat(),
        }
        return _occasion(
            session, compiled, tenant_id, automations, member,
            event_type="member.anniversary", key=f"{member.member_id}:anniversary:{today.year}",
            data=data, now=now,
        )  # fmt: skip

    return _member_pages(engine, tenant_id, fetch, handle)


def _scan_dates(
    engine: Engine,
    tenant_id: str,
    compiled: CompiledProgram,
    automations: list[Automation],
    today: date,
    now: datetime,
) -> int:
    month_day, full = today.strftime("%m-%d"), today.isoformat()
    due = [a for a in automations if any(d in (month_day, full) for d in a.trigger.dates)]
    if not due:
        return 0

    def fetch(session: Session, after: str | None, limit: int) -> list[Member]:
        return repository.members_page(session, tenant_id, after, limit)

    def handle(session: Session, member: Member) -> int:
        return _occasion(
            session, compiled, tenant_id, due, member,
            event_type=None, key=f"{member.member_id}:date:{full}",
            data={"member_id": member.member_id, "date": full}, now=now,
        )  # fmt: skip

    return _member_pages(engine, tenant_id, fetch, handle)


def _scan_expiring(
    engine: Engine,
    tenant_id: str,
    compiled: CompiledProgram,
    automations: list[Automation],
    today: date,
    now: datetime,
) -> int:
    batch = get_settings().job_batch_size
    started = 0
    wallets = compiled.program.wallets
    for automation in automations:
        spec = automation.trigger.points_expiring
        assert spec is not None
        after: tuple[str, str, datetime] | None = None
        while True:
            with write_session(engine) as session:
                groups = repository.expiring_groups(
                    session, tenant_id, wallet=spec.wallet, start=now,
                    end=now + timedelta(days=spec.days), after=after, limit=batch,
                )  # fmt: skip
                for member_id, wallet, expires_at, amount in groups:
                    member = repository.get_member(session, tenant_id, member_id)
                    if member is None or wallet not in wallets:
                        continue
                    data = {
                        "member_id": member_id,
                        "wallet": wallet,
                        "amount": number(amount, wallets[wallet].precision),
                        "expires_at": expires_at.isoformat(),
                    }
                    key = f"{member_id}:expiring:{wallet}:{expires_at.isoformat()}"
                    trigger = {
                        "type": "points.expiring",
                        "id": key,
                        "created_at": now.isoformat(),
                        "data": data,
                    }
                    started += fire(
                        session, compiled=compiled, tenant_id=tenant_id, automation=automation,
                        member=member, trigger_key=key, trigger=trigger, now=now,
                    )  # fmt: skip
            if len(groups) < batch:
                break
            last = groups[-1]
            after = (last[0], last[1], last[2])
    return started
