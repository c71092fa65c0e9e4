"""The embedded POLYV simulator: state, fault injection, the aiohttp app and its server.

The ``parse_*`` functions turn ``bulkpolyv sim`` flags into settings and raise
:class:`SimError` (a sentence, no traceback) on bad input.
"""

from bulkpolyv.sim.app import PolyvSimulator
from bulkpolyv.sim.config import (
    SimConfig,
    SimStats,
    parse_clock_offset,
    parse_latency,
    parse_network_delay,
    parse_rate,
    parse_share,
)
from bulkpolyv.sim.errors import SimError
from bulkpolyv.sim.faults import FaultConfig
from bulkpolyv.sim.server import SimServer
from bulkpolyv.sim.state import ChannelCallbackSetting, SimAccount, SimMonitor, SimState

__all__ = [
    "ChannelCallbackSetting",
    "FaultConfig",
    "PolyvSimulator",
    "SimAccount",
    "SimConfig",
    "SimError",
    "SimMonitor",
    "SimServer",
    "SimState",
    "SimStats",
    "parse_clock_offset",
    "parse_latency",
    "parse_network_delay",
    "parse_rate",
    "parse_share",
]
