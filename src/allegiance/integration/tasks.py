"""Jobs of the shop connectors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.integration.models import IntegrationDelivery
from allegiance.kit import retention


def prune_deliveries(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Forget the tenant's processed shop webhook ids older than
    ``integration_delivery_retention_days``: platforms stop redelivering long before (Shopify
    after 48 hours), so the duplicate check no longer needs them."""
    settings = get_settings()
    before = retention.cutoff(now, settings.integration_delivery_retention_days)
    if before is None:
        return 0
    return retention.delete_in_batches(
        engine,
        IntegrationDelivery,
        [
            IntegrationDelivery.tenant_id,
            IntegrationDelivery.platform,
            IntegrationDelivery.delivery_id,
        ],
        [IntegrationDelivery.tenant_id == tenant_id, IntegrationDelivery.received_at < before],
        batch=settings.job_batch_size,
        max_batches=settings.retention_max_batches,
    )
