"""Bulk work changes the collector's settings only while it runs."""

from __future__ import annotations

import gc

from allegiance.kit.collector import BULK_THRESHOLD, bulk_work


def test_bulk_work_restores_the_collector() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with bulk_work():
        assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_freeze_count() >= frozen
        with bulk_work():  # nested: the outer one restores
            pass
        assert gc.get_threshold()[0] == BULK_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
