from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "buyer"]


class AccountMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=255)
    role: Role = "buyer"


class AccountUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    group: str | None = Field(default=None, max_length=64)
    pooled: bool = False
    approval_threshold: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None
    approval_timeout_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 72
    attributes: dict[str, Any] = Field(default_factory=dict)
    members: list[AccountMember] | None = Field(default=None, max_length=1000)


class MemberLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = "buyer"
