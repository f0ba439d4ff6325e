from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EntryPurchase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", max_length=200)
    member_id: str = Field(min_length=1, max_length=255)
    count: int = Field(default=1, ge=1, le=1000)
