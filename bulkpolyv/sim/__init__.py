"""The embedded POLYV simulator: state, fault injection, the aiohttp app and its server."""

from bulkpolyv.sim.app import PolyvSimulator, SimConfig, SimStats
from bulkpolyv.sim.faults import FaultConfig
from bulkpolyv.sim.server import SimServer
from bulkpolyv.sim.state import SimAccount, SimMonitor, SimState

__all__ = [
    "FaultConfig",
    "PolyvSimulator",
    "SimAccount",
    "SimConfig",
    "SimMonitor",
    "SimServer",
    "SimState",
    "SimStats",
]
