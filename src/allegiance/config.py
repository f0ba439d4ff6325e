"""One typed settings class; every value comes from an ``ALLEGIANCE_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLEGIANCE_", extra="ignore")

    database_url: str = "sqlite:///./allegiance.db"
    clock_override: bool = False

    # limits: every loop over user data and every input has a bound
    max_body_bytes: int = 1_000_000
    max_expression_length: int = 2_000
    max_program_rules: int = 500
    page_size_default: int = 50
    page_size_max: int = 500
    import_batch_size: int = 2_000
    job_batch_size: int = 1_000

    # background work in the embedded default (`serve` runs jobs in-process)
    jobs_interval_seconds: float = 30.0
    run_jobs_in_server: bool = True

    # database pool (Postgres); the API threadpool should not exceed it by much
    pool_size: int = 20
    pool_max_overflow: int = 20
    auth_cache_seconds: float = 5.0

    # member insights (RFM, CLV, churn): how often members are rescored and the model refitted,
    # the lease of one scoring run, and the most purchases one fit or scoring run reads
    insight_score_interval_hours: float = 24.0
    clv_refit_days: float = 7.0
    insight_lease_seconds: float = 3600.0
    insight_max_orders: int = 5_000_000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
