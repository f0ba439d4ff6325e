from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.encryption import EncryptedText
from allegiance.kit.orm import Base, UTCDateTime


class EmailTemplate(Base):
    """A tenant's own version of a template in one locale (replaces the shipped one)."""

    __tablename__ = "email_templates"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    locale: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject: Mapped[str] = mapped_column(String(500))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmailKey(Base):
    """The tenant's secret for signing unsubscribe links (made on first use)."""

    __tablename__ = "email_keys"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
