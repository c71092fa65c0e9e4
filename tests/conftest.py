import signal

import aiohttp
import pytest

from bulkpolyv.client import Credentials, PolyvClient
from bulkpolyv.sim import PolyvSimulator, SimConfig, SimServer, SimState

# Children inherit ignored signals: a CI runner started under nohup would make every SIGHUP
# test see bulkpolyv keep a nohup's promise. The tests that want it ignored say so.
signal.signal(signal.SIGHUP, signal.SIG_DFL)

SEED_STATE = {
    "accounts": [
        {
            "user_id": "u-east",
            "app_id": "app-east",
            "app_secret": "SECRET-EAST-0001",
            "record_callback": "https://old.example.com/cb",
            "channels": [
                {
                    "channel_id": 1001,
                    "monitors": [
                        {"id": 1, "nickname": "alpha", "password": "pw-alpha-1", "enable": "Y"},
                        {"id": 2, "nickname": "beta", "password": "pw-beta-22", "enable": "N"},
                    ],
                },
                {
                    "channel_id": 1002,
                    "monitors": [
                        {"id": 3, "nickname": "gamma", "password": "pw-gamma-3", "enable": "Y"},
                    ],
                },
            ],
        },
        {
            "user_id": "u-west",
            "app_id": "app-west",
            "app_secret": "SECRET-WEST-0002",
            "monitor_feature": False,
            "channels": [{"channel_id": 2001, "monitors": []}],
        },
    ]
}

EAST = Credentials("u-east", "app-east", "SECRET-EAST-0001")
WEST = Credentials("u-west", "app-west", "SECRET-WEST-0002")


@pytest.fixture(autouse=True)
def private_state_directory(tmp_path_factory, monkeypatch):
    """Every test keeps its journals, locks and rate budget in a directory of its own: the
    default budget is shared by every bulkpolyv process of the user, so a test must not
    count against (or wait for) a real run, nor another test process."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("BULKPOLYV_BUDGET", raising=False)


@pytest.fixture
def simulator() -> PolyvSimulator:
    return PolyvSimulator(SimState.from_data(SEED_STATE), SimConfig())


@pytest.fixture
async def sim_server(simulator):
    async with SimServer(simulator) as server:
        yield server


@pytest.fixture
async def sim_client(sim_server):
    async with aiohttp.ClientSession() as session:
        yield PolyvClient(session, api_base=sim_server.url, timeout=5)
