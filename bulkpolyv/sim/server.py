"""Run a :class:`PolyvSimulator` on a local port, in this event loop.

Used by the tests, the demo and ``bulkpolyv sim``. Port 0 picks a free port; ``stop`` and
``start`` again (same port) model POLYV going away for a while and coming back. A port
that cannot be bound raises :class:`SimError`.
"""

from __future__ import annotations

from aiohttp import web

from bulkpolyv.sim.app import PolyvSimulator
from bulkpolyv.sim.errors import SimError


class SimServer:
    def __init__(self, simulator: PolyvSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._runner = web.AppRunner(
            self.simulator.make_app(), access_log=None, handle_signals=False
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            reason = error.strerror or str(error)
            raise SimError(
                f"cannot listen on {self.host}:{self.port}: {reason}; "
                "choose another --port (0 picks a free one)."
            ) from None
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
