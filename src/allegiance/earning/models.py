from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base


class RuleUsage(Base):
    """How often a rule (or campaign) applied, per member and in total, per calendar period.

    ``member_id`` is '' for the total row; ``amount_minor`` counts points against a budget.
    """

    __tablename__ = "rule_usage"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)  # rule:<key> | campaign:<key>
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
