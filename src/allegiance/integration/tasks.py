"""Jobs of the shop connectors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.integration import repository, service
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
        max_batches=settings.job_max_batches,
    )


def erase_shops(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Carry out the tenant's shop erasures in progress: erase the members not erased yet, a
    batch per transaction (each member row-locked as by ``DELETE /v1/members/{id}``), then mark
    the requests completed. Members enrolled meanwhile are erased too: the shop has left."""
    settings = get_settings()
    with read_session(engine) as session:
        if not repository.shop_erasures_in_progress(session, tenant_id):
            return 0
    erased = 0
    for _ in range(settings.job_max_batches):
        with write_session(engine) as session:
            done = service.erase_members_page(session, tenant_id, now, settings.job_batch_size)
            if done < settings.job_batch_size:
                repository.drop_exports(session, tenant_id, None)
                repository.finish_shop_erasures(session, tenant_id)
        erased += done
        if done < settings.job_batch_size:
            break
    return erased
