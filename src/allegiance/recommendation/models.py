from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, UTCDateTime


class RecommendationItem(Base):
    """A product seen in the tenant's recent orders or views, with its popularity; rebuilt
    by the recommendation model job (derived data)."""

    __tablename__ = "recommendation_items"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    category: Mapped[str | None] = mapped_column(String(255), nullable=True)
    popularity: Mapped[float] = mapped_column(Float)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ItemSimilarity(Base):
    """The nearest neighbours of a product by co-occurrence (cosine), top K per product."""

    __tablename__ = "item_similarities"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(String(255), primary_key=True)
    other_sku: Mapped[str] = mapped_column(String(255), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
