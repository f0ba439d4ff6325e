from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the client id: in the body, or else from the Idempotency-Key header
    id: str = Field(default="", max_length=255)
    reward: str = Field(min_length=1, max_length=64)
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the account admin who decides; required with a storefront key
    approver_id: str | None = Field(default=None, min_length=1, max_length=255)
    note: str | None = Field(default=None, max_length=500)
