from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# the longest horizon a fit accepts, per time unit (ten years)
MAX_HORIZON = {"day": 3653.0, "week": 522.0}


class ClvFit(BaseModel):
    """``POST /v1/analytics/clv/fit``."""

    model_config = ConfigDict(extra="forbid")

    calibration_end: date | None = None  # default: today in the program timezone
    time_unit: Literal["day", "week"] = "week"
    horizon: float = Field(gt=0, allow_inf_nan=False)  # in time units
    discount_rate: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)  # annual

    @model_validator(mode="after")
    def _horizon_bounded(self) -> ClvFit:
        if self.horizon > MAX_HORIZON[self.time_unit]:
            raise ValueError(
                f"horizon is at most {MAX_HORIZON[self.time_unit]:g} {self.time_unit}s"
            )
        return self
