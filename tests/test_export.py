"""Export's pure parts: which channels, and the files it renders."""

from pathlib import Path

import pytest

from bulkpolyv.export import ExportedAccount, ExportError, channel_ids, channels_csv, render_export


def test_channels_file_with_an_account_column_gives_each_account_its_list(tmp_path):
    listing = tmp_path / "ids.csv"
    listing.write_text("account,channel_id\neast,2\neast,1\nwest,7\n")
    assert channel_ids(None, str(listing)) == {"east": [1, 2], "west": [7]}
    listing.write_text("channel_id\n3\n1\n3\n")
    assert channel_ids(None, str(listing)) == [1, 3]


@pytest.mark.parametrize(
    ("channels", "text", "message"),
    [
        ("1,abc", None, "--channels: channel id 'abc' is not a positive whole number"),
        (None, "account,channel_id\neast,x1\n", "row 2: channel id 'x1' is not a positive"),
        (None, "account,channel_id\n,5\n", "row 2: the account column is empty"),
    ],
)
def test_bad_channel_ids_are_named(tmp_path, channels, text, message):
    path = None
    if text is not None:
        path = tmp_path / "ids.csv"
        path.write_text(text)
    with pytest.raises(ExportError, match=message):
        channel_ids(channels, str(path) if path else None)


def exported(name: str, channels: dict[int, list], monitoring=None) -> ExportedAccount:  # type: ignore[no-untyped-def]
    raw = {"name": name, "user_id": "u", "app_id": "${A}", "app_secret": "${S}"}
    return ExportedAccount(
        raw, {"record": "https://h/r", "stream": None}, channels, monitoring or {}
    )


def test_a_channels_csv_is_written_only_when_the_lists_differ():
    same = [exported("a", {1: []}), exported("b", {1: []})]
    assert channels_csv(same) is None
    differ = [exported("a2", {1: [], 2: []}), exported("a10", {3: []})]
    assert channels_csv(differ) == "account,channel_id\na2,1\na2,2\na10,3\n"


def test_monitoring_goes_to_the_csv_with_the_monitors_and_channels_without_monitors_stay_in_yaml():
    account = exported("east", {1: [{"id": 5, "nickname": "n"}], 2: []}, {1: "N", 2: "Y"})
    text, files = render_export({}, [account], Path("out/live.yaml"), csv_over=0)
    assert files == {
        Path("out/live-east.csv"): (
            "channel_id,monitor_id,nickname,password,enable,monitoring\n1,5,n,,,N\n"
        )
    }
    assert "channels_file: live-east.csv" in text
    assert "  channels:\n  - channel_id: 2\n    monitoring: Y\n    monitors: []\n" in text
    assert "  callbacks:\n    record: https://h/r\n    stream: null\n" in text
