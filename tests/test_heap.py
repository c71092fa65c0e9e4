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


async def test_the_read_state_is_out_of_the_collector_s_way_while_it_is_planned(
    unfrozen, tmp_path, monkeypatch
):
    # A full collection during make_plan walked the manifest and every monitor read:
    # 40 % of planning's CPU at 20,000 rows (bench/efficiency.py).
    import bulkpolyv.run
    from bulkpolyv.manifest import load_manifest
    from bulkpolyv.run import RunSettings, open_runtime, read_plan
    from bulkpolyv.sim import PolyvSimulator, SimServer
    from tests.simthread import ENV, seeded_state, write_manifest

    frozen_while_planning = []

    def make_plan(manifest, live):
        frozen_while_planning.append(gc.get_freeze_count())
        return real_make_plan(manifest, live)

    real_make_plan = bulkpolyv.run.make_plan
    monkeypatch.setattr(bulkpolyv.run, "make_plan", make_plan)
    path = write_manifest(tmp_path, channels=3)
    manifest = load_manifest(path, env=ENV)
    async with SimServer(PolyvSimulator(seeded_state(path, {}))) as server:
        settings = RunSettings(api_base=server.url)
        async with open_runtime(manifest, settings) as runtime:
            plan = await read_plan(runtime, manifest)
    assert plan.operations  # seeded with drift: there is something to plan
    assert len(frozen_while_planning) == 1 and frozen_while_planning[0] > 0
    assert gc.get_freeze_count() == 0  # the heap given back
