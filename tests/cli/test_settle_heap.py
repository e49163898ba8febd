"""Serving processes settle their heap once started (see gateway.serving.lifecycle.settle_heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.serving.lifecycle import GC_YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    _young, middle, old = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() > 1000  # everything imported and built so far
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
