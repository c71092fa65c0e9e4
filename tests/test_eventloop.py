"""The event loop a command runs on: asyncio's unless uvloop is asked for."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest

from bulkpolyv import eventloop
from bulkpolyv.errors import BulkPolyvError


def fake_uvloop() -> ModuleType:
    module = ModuleType("uvloop")
    module.new_event_loop = asyncio.new_event_loop  # type: ignore[attr-defined]
    return module


def importer(available: dict[str, ModuleType]):  # type: ignore[no-untyped-def]
    def import_module(name: str) -> ModuleType:
        if name not in available:
            raise ImportError(f"No module named {name!r}")
        return available[name]

    return import_module


@pytest.mark.parametrize("choice", ["uvloop", "auto", " UVLOOP "])
def test_uvloop_is_used_when_asked_for_and_installed(choice: str) -> None:
    uvloop = fake_uvloop()
    factory = eventloop.loop_factory({"BULKPOLYV_LOOP": choice}, importer({"uvloop": uvloop}))
    assert factory is uvloop.new_event_loop  # type: ignore[attr-defined]


@pytest.mark.parametrize("environ", [{}, {"BULKPOLYV_LOOP": "asyncio"}])
def test_asyncio_loop_by_default_even_with_uvloop_installed(environ: dict[str, str]) -> None:
    assert eventloop.loop_factory(environ, importer({"uvloop": fake_uvloop()})) is None


def test_auto_without_uvloop_is_asyncio_loop() -> None:
    assert eventloop.loop_factory({"BULKPOLYV_LOOP": "auto"}, importer({})) is None


def test_bulkpolyv_loop_uvloop_without_it_says_how_to_install() -> None:
    with pytest.raises(BulkPolyvError, match=r"pip install 'bulkpolyv\[fast\]'"):
        eventloop.loop_factory({"BULKPOLYV_LOOP": "uvloop"}, importer({}))


def test_an_unknown_loop_name_is_refused_by_name() -> None:
    with pytest.raises(BulkPolyvError, match="BULKPOLYV_LOOP='trio': give asyncio, auto or uvloop"):
        eventloop.loop_factory({"BULKPOLYV_LOOP": "trio"}, importer({}))


def test_run_runs_the_coroutine_on_the_loop_the_factory_makes() -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(asyncio.new_event_loop())
        return made[-1]

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert eventloop.run(which_loop(), factory=factory) is made[0]
    assert made[0].is_closed()


def test_an_unknown_loop_name_closes_the_coroutine_it_was_handed(monkeypatch) -> None:
    # else "coroutine was never awaited" warnings follow the one-sentence error
    import inspect

    async def command() -> None:
        raise AssertionError("never run")

    coroutine = command()
    monkeypatch.setenv("BULKPOLYV_LOOP", "bogus")
    with pytest.raises(BulkPolyvError):
        eventloop.run(coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
