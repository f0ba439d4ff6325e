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

    # outbound webhooks (docs/webhooks.md)
    webhook_timeout_seconds: float = 10.0
    webhook_batch_size: int = 50  # deliveries claimed per lease
    webhook_concurrency: int = 8  # requests in flight per worker
    webhook_lease_seconds: float = 300.0  # > batch / concurrency x timeout
    webhook_retry_schedule_seconds: list[int] = [5, 300, 1800, 7200, 18000, 36000, 36000]
    webhook_response_snippet_chars: int = 500
    webhook_max_endpoints: int = 50
    webhook_replay_max: int = 1_000
    webhook_attempts_shown: int = 50
    webhook_poll_seconds: float = 1.0  # how often `allegiance worker` sends due deliveries
    webhook_secret_overlap_hours: float = 24.0  # the old secret still signs after a rotation


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
