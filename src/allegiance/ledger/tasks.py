"""Ledger jobs: activate matured pending points, expire due lots, warn before expiry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.kit.money import number
from allegiance.ledger import service as ledger
from allegiance.member import repository as members
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program
from allegiance.worker.batches import run_batches


def settle_due_members(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Settle every member with a lot due (activation or expiry) as of ``now``."""

    def due(session: Session, program: CompiledProgram, limit: int) -> list[str]:
        return members.due_for_settlement(session, tenant_id, now, limit, skip_locked=True)

    def handle(session: Session, program: CompiledProgram, member_ids: Sequence[str]) -> None:
        for member_id in member_ids:
            member = members.get(session, tenant_id, member_id)
            assert member is not None
            settle_at = ledger.settle_member(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=member_id,
                last_activity_at=member.last_activity_at,
                now=now,
            )
            members.set_settle_at(session, tenant_id, member_id, settle_at)

    return run_batches(engine, tenant_id, due=due, handle=handle)


def notify_expiring(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Write one ``points.expiring`` event per member, wallet and expiry date, once per lot.

    Lots are taken in batches, row-locked with SKIP LOCKED on Postgres, so two workers never
    announce the same lot. Wallets with ``inactivity_days`` expiry have no per-lot date and
    are not announced here.
    """
    batch = get_settings().job_batch_size
    sent = 0
    with read_session(engine) as session:
        program = load_program(session, tenant_id=tenant_id)
    if program is None:
        return 0
    for wallet_key, wallet in program.program.wallets.items():
        if wallet.expiry.notify_days <= 0:
            continue
        until = now + timedelta(days=wallet.expiry.notify_days)
        while True:
            with write_session(engine) as session:
                lots = ledger.expiring_lots(
                    session,
                    tenant_id=tenant_id,
                    wallet=wallet_key,
                    now=now,
                    until=until,
                    limit=batch,
                )
                grouped: dict[tuple[str, datetime], int] = defaultdict(int)
                for lot in lots:
                    assert lot.expires_at is not None
                    grouped[(lot.member_id, lot.expires_at)] += lot.remaining_minor
                for (member_id, expires_at), amount in sorted(grouped.items()):
                    outbox.emit(
                        session,
                        tenant_id=tenant_id,
                        type_="points.expiring",
                        data={
                            "member_id": member_id,
                            "wallet": wallet_key,
                            "amount": number(amount, wallet.precision),
                            "expires_at": expires_at.isoformat(),
                        },
                        now=now,
                    )
                    sent += 1
                ledger.mark_notified(session, [lot.id for lot in lots], now)
            if len(lots) < batch:
                break
    return sent
