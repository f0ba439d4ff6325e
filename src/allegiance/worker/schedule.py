"""Every periodic job in one list. Each runs per tenant, in bounded batches, and is safe to
run from several workers at once (row locks with SKIP LOCKED on Postgres; SQLite has one
writer at a time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Engine, str, datetime], int]  # (engine, tenant id, now) -> items handled


def jobs() -> list[Job]:
    from allegiance.analytics import tasks as analytics_tasks
    from allegiance.automation import tasks as automation_tasks
    from allegiance.b2b import tasks as b2b_tasks
    from allegiance.insight import tasks as insight_tasks
    from allegiance.integration import tasks as integration_tasks
    from allegiance.ledger import tasks as ledger_tasks
    from allegiance.outbox import tasks as outbox_tasks
    from allegiance.recommendation import tasks as recommendation_tasks
    from allegiance.redemption import tasks as redemption_tasks
    from allegiance.referral import tasks as referral_tasks
    from allegiance.segment import tasks as segment_tasks
    from allegiance.subscription import tasks as subscription_tasks
    from allegiance.tier import tasks as tier_tasks
    from allegiance.webhook import tasks as webhook_tasks

    return [
        Job("activate_and_expire", ledger_tasks.settle_due_members),
        Job("activate_and_expire_accounts", b2b_tasks.settle_due_accounts),
        Job("expiring_notices", ledger_tasks.notify_expiring),
        Job("tier_reviews", tier_tasks.review_due),
        Job("approval_timeouts", redemption_tasks.expire_approvals),
        Job("subscription_renewal_notices", subscription_tasks.notify_renewals),
        Job("subscription_expiry", subscription_tasks.expire_subscriptions),
        Job("referral_conversions", referral_tasks.convert_due),
        # the cohort matrix's member months, after a time zone change or the upgrade
        Job("member_months", analytics_tasks.rebuild_member_months),
        # weekly CLV refit (tenants that fitted once), then the daily member scoring; segments
        # read the scores, so they come after
        Job("clv_refit", insight_tasks.refit_models),
        Job("member_scores", insight_tasks.score_members),
        Job("segments", segment_tasks.refresh),
        Job("recommendation_model", recommendation_tasks.rebuild_stale),
        Job("automation_triggers", automation_tasks.scan_scheduled),
        Job("data_erasures", integration_tasks.erase_shops),
        # hands the events every job above wrote to webhooks and automations
        Job("outbox", outbox_tasks.dispatch),
        # after the outbox: the runs its events started are executed in the same round, and
        # this round's events (and the webhook actions of those runs) go out in this round
        Job("automation_runs", automation_tasks.execute_due),
        Job("webhook_deliveries", webhook_tasks.deliver_due),
        # retention: what is done with and older than its setting (docs/operations.md)
        Job("outbox_retention", outbox_tasks.prune_dispatched),
        Job("webhook_retention", webhook_tasks.prune_finished),
        Job("integration_retention", integration_tasks.prune_deliveries),
    ]
