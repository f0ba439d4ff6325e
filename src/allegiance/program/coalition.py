"""Lookups over the ``brands`` and ``partners`` sections of a program document."""

from __future__ import annotations

from decimal import Decimal

from allegiance.program.schema import Partner, Program


def find_partner(program: Program, key: str) -> Partner | None:
    return next((p for p in program.partners if p.key == key), None)


def partner_wallet(program: Program, partner: Partner) -> str:
    """The wallet a partner's points are earned, spent and settled in."""
    return partner.wallet or program.default_wallet


def partner_point_value(program: Program, partner: Partner) -> Decimal | None:
    """Money per point for settlement: the partner's own, else its wallet's."""
    if partner.point_value is not None:
        return partner.point_value
    wallet = program.wallets.get(partner_wallet(program, partner))
    return wallet.point_value if wallet is not None else None
