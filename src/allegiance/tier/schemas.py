from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ManualTier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=64)
    until: datetime | None = None
    reason: str | None = Field(default=None, max_length=500)
