"""What actually travels: the simulator's request log shows where each parameter went."""

from __future__ import annotations

from bulkpolyv.client import CALLBACK_KINDS, PolyvClient, new_session
from bulkpolyv.records import MonitorUpdate
from tests.conftest import EAST

TOKEN = "CBTOKEN-5f2a"


async def test_v2_calls_carry_nothing_in_the_query_string(sim_server, simulator):
    async with new_session() as session:
        client = PolyvClient(session, api_base=sim_server.url, timeout=5)
        for kind in CALLBACK_KINDS:
            await client.set_callback(EAST, kind, f"https://hooks.example.com/{kind}?t={TOKEN}")
        await client.set_callback(EAST, "record", None)
        await client.update_monitor(EAST, 1001, MonitorUpdate(id=1, password="pw-new-777"))
        await client.set_monitoring(EAST, 1001, "N")
        await client.list_monitors(EAST, 1001)
    log = simulator.requests.to_data()
    v2 = [entry for entry in log if entry["path"].startswith("/live/v2/")]
    v4 = [entry for entry in log if entry["path"].startswith("/live/v4/")]
    assert len(v2) == 4 and len(v4) == 3
    for entry in v2:
        assert entry["query"] == []
        assert entry["content_type"] == "application/x-www-form-urlencoded"
        assert set(entry["form_keys"]) <= {"appId", "timestamp", "sign", "url"}
    for entry in v4:  # v4's rule: the signed query (no secret in it), an unsigned JSON body
        assert {key for key, _ in entry["query"]} <= {"appId", "timestamp", "sign", "channelId"}
    everything = repr(log)
    for secret in (TOKEN, "SECRET-EAST-0001", "pw-new-777"):
        assert secret not in everything
