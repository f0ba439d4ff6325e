"""A validated program with its expressions compiled, cached per (tenant, version)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from allegiance.kit.clock import zone
from allegiance.kit.expression import Expression, compile_expression
from allegiance.program.schema import Campaign, ExperimentScope, Program, Rule


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int
    when: Expression | None
    items: Expression | None
    wallet: str
    campaign: Campaign | None
    windowed: bool  # the rule or its campaign has starts_at / ends_at
    brands: frozenset[str] | None = None  # the wallet takes orders of these brands only
    # the rule's and its campaign's experiment restrictions (all must hold)
    experiments: tuple[ExperimentScope, ...] = ()
    # usage counter names, worked out once: "rule:<key>" and "campaign:<key>"
    counter: str = ""
    campaign_counter: str | None = None
    # the rule (or its campaign) has a budget: capped and counted in amounts
    budgeted: bool = False

    @property
    def reads_context(self) -> bool:
        """Whether deciding the rule looks at the CEL context (conditions, brands, variants)."""
        return bool(self.when or self.items or self.brands is not None or self.experiments)


@dataclass(frozen=True)
class CompiledProgram:
    version: int
    program: Program
    tz: ZoneInfo
    rules: tuple[CompiledRule, ...]
    rules_by_event: dict[str, tuple[CompiledRule, ...]]
    # event types some of whose rules read the CEL context; the others' rules need none built
    context_events: frozenset[str] = frozenset()

    @property
    def currency(self) -> str:
        return self.program.currency


def compile_program(program: Program, version: int) -> CompiledProgram:
    campaigns = {c.key: c for c in program.campaigns}
    compiled: list[CompiledRule] = []
    for index, rule in enumerate(program.rules):
        part: Any = rule.earn or rule.multiply
        campaign = campaigns.get(rule.campaign) if rule.campaign else None
        wallet = (part.wallet if part is not None else None) or program.default_wallet
        compiled.append(
            CompiledRule(
                rule=rule,
                index=index,
                when=compile_expression(rule.when) if rule.when else None,
                items=compile_expression(part.items) if part is not None and part.items else None,
                wallet=wallet,
                campaign=campaign,
                windowed=bool(
                    rule.starts_at
                    or rule.ends_at
                    or (campaign is not None and (campaign.starts_at or campaign.ends_at))
                ),
                brands=_wallet_brands(program, wallet),
                experiments=tuple(
                    scope
                    for scope in (rule.experiment, campaign.experiment if campaign else None)
                    if scope is not None
                ),
                counter=f"rule:{rule.key}",
                campaign_counter=f"campaign:{campaign.key}" if campaign is not None else None,
                budgeted=rule.budget is not None
                or (campaign is not None and campaign.budget is not None),
            )
        )
    # document order, or by priority (lower first); ties keep document order
    ordered = tuple(sorted(compiled, key=lambda c: (c.rule.priority, c.index)))
    by_event: dict[str, list[CompiledRule]] = {}
    for c in ordered:
        if c.rule.enabled:
            by_event.setdefault(c.rule.on, []).append(c)
    return CompiledProgram(
        version=version,
        program=program,
        tz=zone(program.timezone),
        rules=ordered,
        rules_by_event={k: tuple(v) for k, v in by_event.items()},
        context_events=frozenset(
            event for event, rules in by_event.items() if any(c.reads_context for c in rules)
        ),
    )


def _wallet_brands(program: Program, wallet: str) -> frozenset[str] | None:
    config = program.wallets.get(wallet)
    return frozenset(config.brands) if config is not None and config.brands else None


_cache: dict[tuple[str, int], CompiledProgram] = {}
_lock = threading.Lock()


def cached(tenant_id: str, version: int) -> CompiledProgram | None:
    with _lock:
        return _cache.get((tenant_id, version))


def remember(tenant_id: str, compiled: CompiledProgram) -> None:
    with _lock:
        if len(_cache) > 1_000:
            _cache.clear()
        _cache[(tenant_id, compiled.version)] = compiled
