from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TemplatePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500)
    html: str = Field(min_length=1, max_length=200_000)
    text: str = Field(min_length=1, max_length=100_000)
