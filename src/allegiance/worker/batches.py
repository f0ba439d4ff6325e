"""The loop every "handle what is due" job shares: bounded batches, one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.db import write_session
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program

T = TypeVar("T")


def run_batches(
    engine: Engine,
    tenant_id: str,
    *,
    due: Callable[[Session, CompiledProgram, int], Sequence[T]],
    handle: Callable[[Session, CompiledProgram, Sequence[T]], None],
    applies: Callable[[CompiledProgram], bool] = lambda program: True,
) -> int:
    """Fetch up to a batch of due items (``due`` locks them, SKIP LOCKED on Postgres, so
    several workers share the work), handle them and commit; repeat until a batch comes back
    short. Returns how many items were handled. Nothing runs without a program, or when
    ``applies`` says the program has nothing of the kind."""
    batch = get_settings().job_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            program = load_program(session, tenant_id=tenant_id)
            if program is None or not applies(program):
                return handled
            items = due(session, program, batch)
            handle(session, program, items)
        handled += len(items)
        if len(items) < batch:
            return handled
