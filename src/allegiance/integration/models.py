"""Shop platform connections, the webhook deliveries seen, orders cancelled before they were
booked, and privacy requests received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.encryption import EncryptedJSON, EncryptedText
from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Integration(Base):
    """One platform connection of a tenant: secrets, where the shop's API is, the mapping."""

    __tablename__ = "integrations"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    shop_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    api_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # access_token (Shopify) or api_key + api_secret (WooCommerce), for reconciliation
    credentials: Mapped[dict] = mapped_column(EncryptedJSON, default=dict)
    mapping: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IntegrationDelivery(Base):
    """A webhook delivery id already processed (platforms deliver at least once)."""

    __tablename__ = "integration_deliveries"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IntegrationCancellation(Base):
    """An order cancelled by its platform before it was booked here. Platforms do not deliver
    in order: the "paid" webhook of an order may arrive after its "cancelled" one, and must
    then not book it."""

    __tablename__ = "integration_cancellations"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataRequest(Base):
    """A privacy request a platform forwarded (access, customer erasure, shop erasure)."""

    __tablename__ = "integration_data_requests"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # access | erasure | shop_erasure
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    platform_request_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # completed | member_unknown
    # the member's data for an access request (removed when the member is erased)
    export: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_integration_deliveries_received",
    IntegrationDelivery.tenant_id,
    IntegrationDelivery.received_at,
)
Index("ix_integration_data_requests_member", DataRequest.tenant_id, DataRequest.member_id)
