"""long_lived: the run's objects out of the collector's way, and the heap given back."""

import gc

import pytest

from bulkpolyv.heap import long_lived


@pytest.fixture
def unfrozen():
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_what_is_alive_at_entry_is_frozen_within_and_given_back_after(unfrozen):
    plan = [object() for _ in range(10)]
    with long_lived():
        assert gc.get_freeze_count() >= len(plan)
    assert gc.get_freeze_count() == 0


def test_it_is_given_back_when_the_phase_fails(unfrozen):
    with pytest.raises(RuntimeError), long_lived():
        raise RuntimeError("the run stopped")
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_own_objects_is_left_alone(unfrozen):
    gc.freeze()
    theirs = gc.get_freeze_count()
    with long_lived():
        assert gc.get_freeze_count() == theirs
    assert gc.get_freeze_count() == theirs  # our exit did not undo their freeze


def test_a_process_with_the_collector_off_is_left_alone(unfrozen):
    gc.disable()
    try:
        with long_lived():
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()
