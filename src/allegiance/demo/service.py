"""Demo use case: a tenant, the example program and the CDNOW history, then a summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from allegiance.db import read_session, write_session
from allegiance.kit.yamlio import load_yaml
from allegiance.ledger.models import LedgerAccount, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order
from allegiance.program.service import apply_program
from allegiance.tenant.models import Tenant
from allegiance.tenant.service import create_api_key, create_tenant
from allegiance.tier.models import TierState

DEMO_TENANT = "CDNOW demo"
PROGRAM = Path(__file__).with_name("program.yaml")


@dataclass
class DemoSetup:
    tenant_id: str
    api_key: str
    created: bool


def demo_program() -> dict[str, Any]:
    document = load_yaml(PROGRAM.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def setup_tenant(engine: Engine, now: datetime) -> DemoSetup:
    """Reuse the demo tenant when it exists (a re-run books nothing twice)."""
    with write_session(engine) as session:
        tenant_id = session.scalars(
            select(Tenant.id).where(Tenant.name == DEMO_TENANT).order_by(Tenant.created_at)
        ).first()
        if tenant_id is None:
            tenant_id, key = create_tenant(session, name=DEMO_TENANT, now=now)
            apply_program(session, tenant_id=tenant_id, document=demo_program(), now=now)
            return DemoSetup(tenant_id, key.api_key, True)
        key = create_api_key(session, tenant_id=tenant_id, scope="admin", name="demo", now=now)
        return DemoSetup(tenant_id, key.api_key, False)


def summary(engine: Engine, tenant_id: str, top: int = 5) -> dict[str, Any]:
    with read_session(engine) as session:
        members = session.scalar(
            select(func.count()).select_from(Member).where(Member.tenant_id == tenant_id)
        )
        orders = session.scalar(
            select(func.count()).select_from(Order).where(Order.tenant_id == tenant_id)
        )
        revenue = session.scalar(
            select(func.sum(Order.total_minor)).where(Order.tenant_id == tenant_id)
        )
        issued = dict(
            session.execute(
                select(Transfer.wallet, func.sum(Transfer.amount_minor))
                .where(Transfer.tenant_id == tenant_id, Transfer.code == "earn")
                .group_by(Transfer.wallet)
            )
            .tuples()
            .all()
        )
        leaders = (
            session.execute(
                select(
                    LedgerAccount.owner_id, LedgerAccount.posted_minor, LedgerAccount.pending_minor
                )
                .where(
                    LedgerAccount.tenant_id == tenant_id,
                    LedgerAccount.wallet == "points",
                    LedgerAccount.owner_type == "member",
                )
                .order_by(
                    (LedgerAccount.posted_minor + LedgerAccount.pending_minor).desc(),
                    LedgerAccount.owner_id,
                )
                .limit(top)
            )
            .tuples()
            .all()
        )
        tiers = dict(
            session.execute(
                select(TierState.shown_key, func.count())
                .where(TierState.tenant_id == tenant_id, TierState.owner_type == "member")
                .group_by(TierState.shown_key)
            )
            .tuples()
            .all()
        )
    return {
        "tiers": {str(k): int(v) for k, v in tiers.items() if k},
        "members": int(members or 0),
        "orders": int(orders or 0),
        "revenue_minor": int(revenue or 0),
        "issued_minor": {k: int(v or 0) for k, v in issued.items()},
        "top_members": [{"member_id": m, "points": int(p) + int(q)} for m, p, q in leaders],
    }
