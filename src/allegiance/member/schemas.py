from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class MemberUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    birthdate: date | None = None
    locale: str | None = Field(default=None, max_length=20)
    tags: list[str] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = None
    account_id: str | None = Field(default=None, max_length=255)
    account_role: Literal["admin", "buyer"] | None = None
    referral_code: str | None = Field(default=None, max_length=100)
    enrolled_at: datetime | None = None
    # consent to e-mail: transactional (account notices) and marketing; the time of each
    # change is kept (``email_consent_at``, ``marketing_consent_at``)
    email_consent: bool | None = None
    marketing_consent: bool | None = None
