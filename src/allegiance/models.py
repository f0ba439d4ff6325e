"""Imports every model so that metadata (and Alembic) sees all tables."""

from allegiance.earning.models import RuleUsage
from allegiance.kit.orm import Base
from allegiance.ledger.models import LedgerAccount, Lot, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Event, Order, Refund
from allegiance.outbox.models import OutboxEvent
from allegiance.subscription.models import Subscription, SubscriptionPayment
from allegiance.tenant.models import ApiKey, IdempotencyRecord, ProgramVersion, Tenant

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "IdempotencyRecord",
    "LedgerAccount",
    "Lot",
    "Member",
    "Order",
    "OutboxEvent",
    "ProgramVersion",
    "Refund",
    "RuleUsage",
    "Subscription",
    "SubscriptionPayment",
    "Tenant",
    "Transfer",
]
