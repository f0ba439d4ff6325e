"""Imports every model so that metadata (and Alembic) sees all tables."""

from allegiance.automation.models import AutomationMark, AutomationRun
from allegiance.b2b.models import Account
from allegiance.coupon.models import Coupon, CouponUse
from allegiance.earning.models import RuleUsage
from allegiance.email.models import EmailKey, EmailTemplate
from allegiance.engagement.badge_models import ChallengeProgress, MemberBadge
from allegiance.engagement.game_models import PollVote, QuizAttempt, SurveyResponse
from allegiance.insight.models import MemberScore
from allegiance.kit.orm import Base
from allegiance.ledger.models import LedgerAccount, Lot, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Event, Order, Refund
from allegiance.outbox.models import OutboxEvent
from allegiance.redemption.models import Redemption
from allegiance.referral.models import Referral, ReferralCode
from allegiance.subscription.models import Subscription, SubscriptionPayment
from allegiance.sweepstakes.models import SweepstakeDraw, SweepstakeEntry
from allegiance.tenant.models import ApiKey, IdempotencyRecord, ProgramVersion, Tenant
from allegiance.tier.models import TierChange, TierFact, TierState

__all__ = [
    "Account",
    "ApiKey",
    "AutomationMark",
    "AutomationRun",
    "Base",
    "ChallengeProgress",
    "Coupon",
    "CouponUse",
    "EmailKey",
    "EmailTemplate",
    "Event",
    "IdempotencyRecord",
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
    "Redemption",
    "Referral",
    "ReferralCode",
    "Refund",
    "RuleUsage",
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
]
