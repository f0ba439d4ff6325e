"""Ledger tables. Only ``ledger/service.py`` (through its repository) writes them.

``ledger_transfers`` is append-only. ``ledger_accounts`` caches posted and pending balances of
member accounts (for the balance check inside the write); system account balances are derived
from transfers, so no hot row serialises every order. ``ledger_lots`` track what is left of each
credit, for expiry and earliest-expiry-first spending.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, UTCDateTime


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    # owner first: one index serves "all wallets of a member" and "this wallet of members"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_type", "owner_id", "wallet"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    wallet: Mapped[str] = mapped_column(String(64))
    owner_type: Mapped[str] = mapped_column(String(20))  # member | system
    owner_id: Mapped[str] = mapped_column(String(255))
    posted_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class Transfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (UniqueConstraint("tenant_id", "idem_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    wallet: Mapped[str] = mapped_column(String(64))
    debit_account_id: Mapped[int] = mapped_column(BigInteger)
    credit_account_id: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # earn | activate | spend | expire | reverse | adjust | transfer
    code: Mapped[str] = mapped_column(String(20))
    # pending (two-phase, not yet usable) | posted | void (cancels part of a pending transfer)
    phase: Mapped[str] = mapped_column(String(10))
    pending_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_type: Mapped[str] = mapped_column(String(20))  # order | refund | event | adjustment...
    source_id: Mapped[str] = mapped_column(String(255))
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    lot_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    idem_key: Mapped[str] = mapped_column(String(400))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the coalition partner that funded (earn, reverse) or accepted (spend) these points
    partner: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Lot(Base):
    __tablename__ = "ledger_lots"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    wallet: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10))  # pending | active | closed
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    remaining_minor: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    transfer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_transfers_member", Transfer.tenant_id, Transfer.member_id, Transfer.id)
Index("ix_transfers_order", Transfer.tenant_id, Transfer.order_id)
# partial: only partner-stamped transfers, so the bookings of a program without partners (and
# the program's own orders) pay nothing to maintain it
Index(
    "ix_transfers_partner",
    Transfer.tenant_id,
    Transfer.partner,
    Transfer.effective_at,
    postgresql_where=Transfer.partner.is_not(None),
    sqlite_where=Transfer.partner.is_not(None),
)
Index("ix_lots_account", Lot.account_id, Lot.status)
Index("ix_lots_expiry_due", Lot.tenant_id, Lot.status, Lot.expires_at)
