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

    # e-mail: smtp://user:pass@host:port (smtps:// for TLS, ?starttls=true to upgrade); without
    # it mails are written as .eml files to ``mail_dir`` (default: "mail" beside the database)
    smtp_url: str | None = None
    smtp_timeout_seconds: float = 10.0
    mail_dir: str | None = None
    mail_from: str = "loyalty@localhost"
    # where members reach the unsubscribe page (links in marketing mails)
    public_url: str = "http://127.0.0.1:8000"
    automation_max_attempts: int = 5


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
