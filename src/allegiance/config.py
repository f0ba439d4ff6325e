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
    export_batch_size: int = 1_000  # rows per keyset page of `allegiance export`
    # analytics: buckets of one series or cohort matrix (each series bucket is one KPI query)
    analytics_max_buckets: int = 400
    analytics_work_mem_mb: int = 64  # Postgres work_mem of an analytics read
    job_batch_size: int = 1_000
    # batches of job_batch_size one run of a cleanup job handles at most (retention, shop
    # erasures): a large backlog is worked off over several rounds
    job_max_batches: int = 20
    experiment_max_members: int = 2_000_000  # members one experiment results read covers
    # gross margin for ROI when the program has no analytics.gross_margin (0.3 = 30 %)
    analytics_gross_margin: float = 0.3
    simulation_max_orders: int = 5_000_000  # orders one simulation replays

    # background work in the embedded default (`serve` runs jobs in-process)
    jobs_interval_seconds: float = 30.0
    run_jobs_in_server: bool = True

    # database pool (Postgres); the API threadpool should not exceed it by much
    pool_size: int = 20
    pool_max_overflow: int = 20
    auth_cache_seconds: float = 5.0

    # shop platform connectors: reconciliation pulls through the platforms' REST APIs
    integration_http_timeout_seconds: float = 30.0
    integration_max_pages: int = 1_000  # pages one reconciliation run reads at most
    integration_max_retries: int = 5  # per page, on 429 / 5xx / network errors
    integration_retry_after_max_seconds: float = 60.0  # a longer Retry-After is cut to this
    shopify_api_version: str = "2026-07"
    # segments (docs/segments.md): refresh age, batch, history read per member for affinity
    segment_refresh_hours: float = 24.0
    segment_batch_size: int = 500
    segment_affinity_days: int = 365
    segment_affinity_orders: int = 200
    segment_affinity_views: int = 500
    segment_affinity_view_weight: float = 0.25

    # recommendations (docs/recommendations.md): model size and history bounds
    recommendation_refresh_hours: float = 24.0
    recommendation_window_days: int = 365
    recommendation_max_orders: int = 20_000
    recommendation_max_views: int = 50_000
    recommendation_max_items: int = 5_000
    recommendation_items_per_member: int = 50
    recommendation_neighbours: int = 20
    recommendation_view_weight: float = 0.3
    recommendation_limit_max: int = 50
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
    # member insights (RFM, CLV, churn): how often members are rescored and the model refitted,
    # the lease of one scoring run, and the most purchases one fit or scoring run reads
    insight_score_interval_hours: float = 24.0
    clv_refit_days: float = 7.0
    insight_lease_seconds: float = 3600.0
    insight_max_orders: int = 5_000_000
    insight_recommendations: int = 5  # products listed in a member's insights
    # e-mail: smtp://user:pass@host:port (smtps:// for TLS, ?starttls=true to upgrade); without
    # it mails are written as .eml files to ``mail_dir`` (default: "mail" beside the database)
    smtp_url: str | None = None
    smtp_timeout_seconds: float = 10.0
    mail_dir: str | None = None
    mail_from: str = "loyalty@localhost"
    # where members reach the unsubscribe page (links in marketing mails)
    public_url: str = "http://127.0.0.1:8000"
    automation_max_attempts: int = 5
    # secrets at rest (docs/operations.md#secrets-at-rest): comma-separated Fernet keys, the
    # first encrypts, all decrypt; unset stores webhook and connector secrets as plaintext
    secret_keys: str | None = None
    # retention (docs/operations.md): days a log-like row is kept once it is done with; 0 keeps
    # everything. Dispatched domain events (the GET /v1/events feed), finished outbound webhook
    # deliveries with their attempts, processed inbound shop webhook ids (duplicate checks)
    outbox_retention_days: float = 90.0
    webhook_delivery_retention_days: float = 30.0
    integration_delivery_retention_days: float = 30.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
