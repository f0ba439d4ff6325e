"""Imports every model so that metadata (and Alembic) sees all tables."""

import allegiance.analytics.models  # noqa: F401  (member_months; indexes over other tables)
from allegiance.automation.models import AutomationMark, AutomationRun
from allegiance.b2b.models import Account
from allegiance.coupon.models import Coupon, CouponUse
from allegiance.earning.models import RuleUsage
from allegiance.email.models import EmailKey, EmailTemplate
from allegiance.engagement.badge_models import ChallengeProgress, MemberBadge
from allegiance.engagement.game_models import PollVote, QuizAttempt, SurveyResponse
from allegiance.insight.models import ClvModel, MemberScore
from allegiance.integration.models import (
    DataRequest,
    Integration,
    IntegrationCancellation,
    IntegrationDelivery,
)
from allegiance.kit.orm import Base
from allegiance.ledger.models import LedgerAccount, Lot, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Event, Order, Refund
from allegiance.outbox.models import OutboxEvent
from allegiance.recommendation.models import ItemSimilarity, RecommendationItem
from allegiance.redemption.models import Redemption
from allegiance.referral.models import Referral, ReferralCode
from allegiance.segment.models import SegmentCheck, SegmentMembership
from allegiance.subscription.models import Subscription, SubscriptionPayment
from allegiance.sweepstakes.models import SweepstakeDraw, SweepstakeEntry
from allegiance.tenant.models import ApiKey, IdempotencyRecord, ProgramVersion, Tenant
from allegiance.tier.models import TierChange, TierFact, TierState
from allegiance.webhook.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "AutomationMark",
    "AutomationRun",
    "Base",
    "ChallengeProgress",
    "ClvModel",
    "Coupon",
    "CouponUse",
    "DataRequest",
    "EmailKey",
    "EmailTemplate",
    "Event",
    "IdempotencyRecord",
    "Integration",
    "IntegrationCancellation",
    "IntegrationDelivery",
    "ItemSimilarity",
    "LedgerAccount",
    "Lot",
    "Member",
    "MemberBadge",
    "MemberScore",
    "Order",
    "OutboxEvent",
    "PollVote",
    "ProgramVersion",
    "QuizAttempt",
    "RecommendationItem",
    "Redemption",
    "Referral",
    "ReferralCode",
    "Refund",
    "RuleUsage",
    "SegmentCheck",
    "SegmentMembership",
    "Subscription",
    "SubscriptionPayment",
    "SurveyResponse",
    "SweepstakeDraw",
    "SweepstakeEntry",
    "Tenant",
    "TierChange",
    "TierFact",
    "TierState",
    "Transfer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
