"""The manifest loader: each rule with its message and place, all errors at once."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.manifest import ManifestError, load_manifest

HERE = Path(__file__).parent / "manifests"
EXAMPLE = Path(__file__).parent.parent / "manifests" / "example.yaml"
EXAMPLE_ENV = {
    "POLYV_EAST_APP_ID": "a1",
    "POLYV_EAST_SECRET": "SEKRIT-east-778",
    "POLYV_WEST_APP_ID": "a2",
    "POLYV_WEST_SECRET": "SEKRIT-west-778",
    "POLYV_ARCHIVE_APP_ID": "a3",
    "POLYV_ARCHIVE_SECRET": "SEKRIT-arch-778",
    "MON_PW": "SEKRIT-pw-778",
}


def problems(path: Path, env=None, **kwargs) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, env=env or {}, **kwargs)
    return [str(p) for p in caught.value.problems]


def test_every_mistake_is_reported_at_once_sorted_by_place():
    found = problems(HERE / "many-mistakes.yaml", env={"APP_ID": "a"})
    where = str(HERE / "many-mistakes.yaml")
    expected = [
        (3, 13, "limits.requests: 1600 per 10 s allows up to 1600 requests in 10 s"),
        (4, 3, "limits.concurency: unknown key 'concurency'; did you mean 'concurrency'?"),
        (6, 21, "defaults.monitor.enable: must be Y or N (or true/false)"),
        (9, 14, "accounts[0].user_id: must not be empty"),
        (11, 17, "accounts[0].app_secret: must be a ${VAR} reference"),
        (12, 22, "accounts[0].record_callback: must be an absolute http:// or https:// URL"),
        (14, 21, "accounts[0].channels[0].channel_id: must be a positive number"),
        (16, 31, "accounts[0].channels[0].monitors[0].nickname: a nickname must be 1–16"),
        (16, 74, "accounts[0].channels[0].monitors[0].password: a password must be 6–16"),
        (17, 13, "accounts[0].channels[0].monitors[1].id: is required"),
        (18, 11, "accounts[1].name: account name 'east' is already used at"),
        (21, 17, "accounts[1].app_secret: environment variable MISSING_SECRET is not set"),
        (22, 5, "accounts[1].chanels: unknown key 'chanels'; did you mean 'channels'?"),
    ]
    assert len(found) == len(expected)
    for text, (line, column, start) in zip(found, expected, strict=True):
        assert text.startswith(f"{where}:{line}:{column}: {start}"), text


def test_secrets_never_appear_in_messages():
    found = "\n".join(problems(HERE / "many-mistakes.yaml", env={"APP_ID": "a"}))
    assert "literal-secret-value" not in found
    assert "TOKEN123" not in found  # the bad callback URL's query
    assert "abc" not in found  # the short password


def test_conflicting_duplicate_monitor_names_both_places():
    (found,) = problems(HERE / "duplicate-monitor.yaml", env={"SECRET": "s"})
    assert found.startswith(f"{HERE / 'duplicate-monitor.yaml'}:15:13: ")
    assert "monitor 2 of channel 10 is already given with different values at" in found
    assert found.endswith("duplicate-monitor.yaml:11:13 (accounts[0].channels[0].monitors[1])")


def test_identical_duplicates_are_merged():
    path = HERE / "duplicate-monitor.yaml"
    text = path.read_text().replace("second", "first")
    copy = path.parent / "merged-duplicates.tmp.yaml"
    copy.write_text(text)
    try:
        manifest = load_manifest(copy, env={"SECRET": "s"})
    finally:
        copy.unlink()
    (channel,) = manifest.accounts[0].channels
    assert [m.id for m in channel.monitors] == [1, 2]


def test_csv_rows_are_validated_with_file_and_row_and_merged_with_yaml():
    found = problems(HERE / "bad-csv.yaml", env={"SECRET": "s"})
    csv = HERE / "bad-channels.csv"
    assert found[0].startswith(
        f"{csv}:2:1: accounts[0].channels_file(row 2): monitor 1 of "
        "channel 10 is already given with different values"
    )
    assert (
        found[1]
        == f"{csv}:4:1: accounts[0].channels_file(row 4).channel_id: must be a whole number"
    )
    assert found[2] == (
        f"{csv}:5:4: accounts[0].channels_file(row 5).password: "
        "a password must be 6–16 characters (got 3)"
    )


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("yaml-syntax.yaml", ":5:1: YAML syntax: did not find expected ',' or ']'"),
        ("duplicate-key.yaml", ":5:5: accounts[0].user_id: duplicate key (first at line 4)"),
        ("not-utf8.yaml", ":3:15: not UTF-8 text (save the file as UTF-8)"),
        ("empty.yaml", ":1:1: the manifest is empty"),
        ("billion-laughs.yaml", ":1:1: expands to more than 1,000,000 values"),
    ],
)
def test_unreadable_files_get_a_located_message(fixture, message):
    (found,) = problems(HERE / fixture, env={"SECRET": "s"})
    assert found.startswith(str(HERE / fixture) + message)


def test_example_loads_with_defaults_csv_and_env():
    manifest = load_manifest(EXAMPLE, env=EXAMPLE_ENV)
    east, west, archive = manifest.accounts
    assert east.callbacks == {"record": "https://hooks.example.com/polyv/record?team=east"}
    assert west.callbacks == {"record": "https://hooks.example.com/polyv/record"}  # the default
    assert archive.callbacks == {"record": None}  # null: switch off
    night = east.channels[0].monitors[0]
    assert (night.password, night.enable) == ("SEKRIT-pw-778", "N")
    assert east.channels[0].monitors[1].enable == "Y"  # defaults.monitor
    csv_monitor = west.channels[1].monitors[0]
    assert (csv_monitor.id, csv_monitor.nickname, csv_monitor.enable) == (4003, "west-ops-2", "Y")
    assert str(csv_monitor.source).endswith("west-channels.csv:4:1")
    assert "SEKRIT" not in repr(manifest)
    assert manifest.summary_lines()[1] == "west: 1 callback, 4 monitors on 3 channels"


def test_unset_callback_without_default_is_unmanaged(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\naccounts:\n  - {name: a, user_id: u, app_id: x, app_secret: '${S}'}\n"
    )
    (account,) = load_manifest(path, env={"S": "s"}).accounts
    assert account.callbacks == {}


def test_yaml_booleans_are_accepted_for_enable(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\naccounts:\n  - name: a\n    user_id: u\n    app_id: x\n"
        "    app_secret: ${S}\n    channels:\n      - channel_id: 1\n        monitors:\n"
        "          - {id: 1, enable: false}\n          - {id: 2, enable: yes}\n"
    )
    (account,) = load_manifest(path, env={"S": "s"}).accounts
    assert [m.enable for m in account.channels[0].monitors] == ["N", "Y"]


def test_limits_above_polyv_ceiling_in_a_short_window_are_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nlimits: {requests: 400, per_seconds: 2}\naccounts:\n"
        "  - {name: a, user_id: u, app_id: x, app_secret: '${S}'}\n"
    )
    (found,) = problems(path, env={"S": "s"})
    assert "400 per 2 s allows up to 2000 requests in 10 s" in found


def test_no_env_checks_structure_only():
    assert load_manifest(EXAMPLE, env={}, resolve_env=False).accounts[0].name == "east"


def test_validate_command_exit_codes_and_summary(monkeypatch):
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "east: 1 callback, 3 monitors on 2 channels" in result.stdout
    result = CliRunner().invoke(cli, ["validate", str(HERE / "duplicate-key.yaml")])
    assert result.exit_code == 1 and "duplicate key" in result.stderr


def test_validate_no_env_needs_no_environment(monkeypatch):
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    missing = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert missing.exit_code == 1 and "is not set" in missing.stderr
    # only variables are missing: the way to check the file alone is named
    assert "`validate --no-env` checks the file without them" in missing.stderr
    assert CliRunner().invoke(cli, ["validate", "--no-env", str(EXAMPLE)]).exit_code == 0


def test_validate_names_no_env_only_when_nothing_but_variables_is_wrong(monkeypatch, tmp_path):
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("version: 1", "version: 2"))
    result = CliRunner().invoke(cli, ["validate", str(broken)])
    assert result.exit_code == 1 and "is not set" in result.stderr and "version" in result.stderr
    assert "--no-env" not in result.stderr


def test_schema_command_prints_json_schema():
    import json

    result = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(result.stdout)
    assert "accounts" in schema["properties"]


def test_account_references_and_settings_are_kept_as_written_for_export():
    manifest = load_manifest(EXAMPLE, env=EXAMPLE_ENV)
    east = manifest.accounts[0]
    assert east.app_secret == "SEKRIT-east-778"
    assert east.references == {
        "user_id": "u1a2b3c4",
        "app_id": "${POLYV_EAST_APP_ID}",
        "app_secret": "${POLYV_EAST_SECRET}",
    }
    assert manifest.written_settings == {
        "api_base": "https://api.polyv.net",
        "limits": {
            "requests": 1400,
            "per_seconds": 10,
            "concurrency": "auto",
            "timeout": 20,
            "attempts": 5,
        },
    }
    assert "SEKRIT" not in repr(manifest)


def test_yaml_boolean_and_csv_y_for_one_monitor_are_the_same_value(tmp_path):
    (tmp_path / "c.csv").write_text("channel_id,monitor_id,enable\n1,7,Y\n")
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\naccounts:\n  - name: a\n    user_id: u\n    app_id: x\n"
        "    app_secret: ${S}\n    channels_file: c.csv\n    channels:\n"
        "      - {channel_id: 1, monitors: [{id: 7, enable: true}]}\n"
    )
    (account,) = load_manifest(path, env={"S": "s"}).accounts
    assert [(m.id, m.enable) for m in account.channels[0].monitors] == [(7, "Y")]


def test_callbacks_come_from_the_account_else_the_defaults_with_their_places():
    path = HERE / "callbacks-and-monitoring.yaml"
    east, west = load_manifest(path, env={"SECRET": "s"}).accounts
    assert east.callbacks == {
        "record": "https://hooks.example.com/polyv/record?team=east",
        "playback": "https://hooks.example.com/polyv/playback",  # the default
        "stream": None,  # null: switch it off
    }
    assert {k: str(v) for k, v in east.callback_sources.items()} == {
        "record": f"{path}:13:15",
        "playback": f"{path}:5:15",
        "stream": f"{path}:14:15",
    }
    # record_callback is callbacks.record written short, and wins over the default
    assert west.callbacks == {
        "record": None,
        "playback": "https://hooks.example.com/polyv/playback",
    }
    assert str(west.callback_sources["record"]) == f"{path}:26:22"
    assert "team=east" not in repr(east)


def test_callbacks_absent_without_default_are_left_alone(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\naccounts:\n  - {name: a, user_id: u, app_id: x, app_secret: '${S}',\n"
        "     callbacks: {playback: 'https://h.example.com/p'}}\n"
    )
    (account,) = load_manifest(path, env={"S": "s"}).accounts
    assert account.callbacks == {"playback": "https://h.example.com/p"}


def test_monitoring_from_channels_defaults_and_csv_rows():
    path = HERE / "callbacks-and-monitoring.yaml"
    csv = HERE / "callbacks-and-monitoring.csv"
    manifest = load_manifest(path, env={"SECRET": "s"})
    east, west = manifest.accounts
    assert [(c.channel_id, c.monitoring, str(c.monitoring_source)) for c in east.channels] == [
        (10, "Y", f"{path}:17:21"),
        (11, "N", f"{path}:6:15"),  # defaults.monitoring
        (12, None, "None"),  # null on the channel: left alone despite the default
    ]
    assert [(c.channel_id, c.monitoring, str(c.monitoring_source)) for c in west.channels] == [
        (20, "Y", f"{csv}:2:1"),  # row 3 leaves the cell empty: no second value
        (21, "N", f"{path}:6:15"),
    ]
    assert manifest.summary_lines() == [
        "east: 3 callbacks, 1 monitor on 3 channels, monitoring set on 2 channels",
        "west: 2 callbacks, 3 monitors on 2 channels, monitoring set on 2 channels",
    ]


def test_record_callback_and_callbacks_record_together_name_both_places():
    path = HERE / "record-callback-twice.yaml"
    assert problems(path, env={"SECRET": "s"}) == [
        f"{path}:4:23: defaults.callbacks.record: the record callback is given twice, here and "
        f"as defaults.record_callback at {path}:3:20; keep one (record_callback is shorthand "
        "for callbacks.record)",
        f"{path}:13:15: accounts[0].callbacks.record: the record callback is given twice, here "
        f"and as accounts[0].record_callback at {path}:10:22; keep one (record_callback is "
        "shorthand for callbacks.record)",
    ]


def test_rows_of_one_channel_that_disagree_on_monitoring_name_both_rows():
    path = HERE / "monitoring-disagrees.yaml"
    csv = HERE / "monitoring-disagrees.csv"
    assert problems(path, env={"SECRET": "s"}) == [
        f"{csv}:2:1: accounts[0].channels_file(row 2): channel 10's monitoring is N here but Y "
        f"at {path}:9:21 (accounts[0].channels[0].monitoring); give one value per channel",
        f"{csv}:5:1: accounts[0].channels_file(row 5): channel 20's monitoring is N here but Y "
        f"at {csv}:3:1 (accounts[0].channels_file(row 3)); give one value per channel",
        f"{csv}:6:3: accounts[0].channels_file(row 6).monitoring: must be Y or N (or true/false)",
    ]


def test_bad_callbacks_and_monitoring_values_are_located():
    path = HERE / "callbacks-bad.yaml"
    found = problems(path, env={"SECRET": "s"})
    assert found == [
        f"{path}:3:15: defaults.monitoring: must be Y or N (or true/false)",
        f"{path}:10:7: accounts[0].callbacks.recrod: unknown key 'recrod'; did you mean 'record'?",
        f"{path}:11:15: accounts[0].callbacks.stream: must be an absolute http:// or https:// "
        "URL with a host",
        f"{path}:13:38: accounts[0].channels[0].monitoring: must be Y or N (or true/false)",
    ]
    assert "SEKRIT" not in "\n".join(found)


def test_schema_command_lists_callbacks_and_monitoring():
    import json

    schema = json.loads(CliRunner().invoke(cli, ["schema"]).stdout)["$defs"]
    assert list(schema["CallbacksSpec"]["properties"]) == ["record", "playback", "stream"]
    assert "callbacks" in schema["AccountSpec"]["properties"]
    assert {"callbacks", "monitoring"} <= set(schema["DefaultsSpec"]["properties"])
    assert "monitoring" in schema["ChannelSpec"]["properties"]


SAME_ACCOUNT = HERE / "same-polyv-account-twice.yaml"


def test_two_entries_for_one_polyv_account_name_both_places():
    env = {"SECRET": "s", "OTHER_SECRET": "t", "EAST_APP_ID": "app1", "SAME_APP_ID": "app1"}
    assert problems(SAME_ACCOUNT, env=env) == [
        f"{SAME_ACCOUNT}:11:5: accounts[2]: account 'east-again' has the same app_id and "
        f"user_id as account 'east' at {SAME_ACCOUNT}:3:5: both entries are one POLYV account "
        "and would undo each other's changes on every run; merge them"
    ]
    load_manifest(SAME_ACCOUNT, env={**env, "SAME_APP_ID": "app2"})  # another app: fine


def test_one_polyv_account_twice_compares_the_reference_text_without_env(tmp_path):
    load_manifest(SAME_ACCOUNT, env={}, resolve_env=False)  # ${SAME_APP_ID} is other text
    copy = tmp_path / "same.yaml"
    copy.write_text(SAME_ACCOUNT.read_text().replace("user_id: u2", "user_id: u1"))
    (found,) = problems(copy, resolve_env=False)
    assert found.startswith(f"{copy}:7:5: accounts[1]: account 'west' has the same app_id and ")


def test_unresolved_ids_are_not_compared():
    found = problems(SAME_ACCOUNT, env={"SECRET": "s", "OTHER_SECRET": "t"})
    assert [p.split(": ", 1)[1] for p in found] == [
        "accounts[0].app_id: environment variable EAST_APP_ID is not set",
        "accounts[1].app_id: environment variable EAST_APP_ID is not set",
        "accounts[2].app_id: environment variable SAME_APP_ID is not set",
    ]


def test_an_unknown_key_is_reported_at_the_key_not_its_value():
    path = HERE / "unknown-key-at-top.yaml"
    assert problems(path, env={"SECRET": "s"}) == [
        f"{path}:1:1: accounts: is required",
        f"{path}:2:1: acounts: unknown key 'acounts'; did you mean 'accounts'?",
    ]


def test_validate_no_env_on_the_demo_manifest_is_valid():
    # ${DEMO_MONITOR_PASSWORD} is longer than 16 characters: a placeholder is not a value.
    demo = Path(__file__).parent.parent / "manifests" / "demo.yaml"
    result = CliRunner().invoke(cli, ["validate", "--no-env", str(demo)])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[1] == (
        "  east: 2 callbacks, 6 monitors on 3 channels, monitoring set on 3 channels"
    )


def test_placeholders_skip_value_checks_but_not_where_a_number_is_needed():
    path = HERE / "placeholder-where-number-needed.yaml"
    assert problems(path, resolve_env=False) == [
        f"{path}:9:21: accounts[0].channels[0].channel_id: must be a whole number: a ${{VAR}} "
        "here can only be checked with its value (set it, drop --no-env)"
    ]
    env = {
        "APP_ID": "a",
        "SECRET": "s",
        "CALLBACK_URL": "https://h.example.com/x",
        "CHANNEL_ID": "12",
        "NICK": "n",
        "A_LONG_PASSWORD_VARIABLE": "pw123456",
        "ON": "y",
    }
    (account,) = load_manifest(path, env=env).accounts
    (monitor,) = account.channels[0].monitors
    assert (account.channels[0].channel_id, monitor.password, monitor.enable) == (
        12,
        "pw123456",
        "Y",
    )
    env["A_LONG_PASSWORD_VARIABLE"] = "short"  # resolved values are checked as ever
    (found,) = problems(path, env=env)
    assert found == (
        f"{path}:11:52: accounts[0].channels[0].monitors[0].password: "
        "a password must be 6–16 characters (got 5)"
    )


def test_no_env_manifest_that_fails_always_lists_its_problems(monkeypatch):
    path = HERE / "placeholder-where-number-needed.yaml"
    result = CliRunner().invoke(cli, ["validate", "--no-env", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("1 problem in the manifest:\n")


def test_an_empty_environment_variable_is_an_error_like_a_missing_one():
    path = HERE / "empty-variable.yaml"
    csv = HERE / "empty-variable.csv"
    assert problems(path, env={"APP_ID": "", "SECRET": "s", "MON_PW": ""}) == [
        f"{csv}:2:3: accounts[0].channels_file(row 2).password: "
        "environment variable MON_PW is set but empty",
        f"{path}:5:13: accounts[0].app_id: environment variable APP_ID is set but empty",
    ]


def test_csv_rows_checked_in_chunks_keep_their_lines_and_cross_checks(monkeypatch):
    from bulkpolyv.manifest import csvsource

    monkeypatch.setattr(csvsource, "CHUNK_ROWS", 2)
    found = problems(HERE / "bad-csv.yaml", env={"SECRET": "s"})
    csv = HERE / "bad-channels.csv"
    assert found[0].startswith(f"{csv}:2:1: accounts[0].channels_file(row 2): monitor 1 of ")
    assert found[1:] == [
        f"{csv}:4:1: accounts[0].channels_file(row 4).channel_id: must be a whole number",
        f"{csv}:5:4: accounts[0].channels_file(row 5).password: "
        "a password must be 6–16 characters (got 3)",
    ]
    manifest = load_manifest(
        Path(__file__).parent.parent / "manifests" / "example.yaml", env=EXAMPLE_ENV
    )
    west = manifest.accounts[1]
    assert [(m.id, str(m.source).rsplit(":", 2)[1]) for c in west.channels for m in c.monitors] == [
        (4001, "2"),
        (4002, "3"),
        (4003, "4"),
        (4004, "5"),
    ]


def test_a_channels_file_that_cannot_be_read_is_named_where_the_manifest_names_it(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\naccounts:\n  - name: east\n    user_id: u1\n    app_id: a1\n"
        "    app_secret: ${SECRET}\n    channels_file: missing.csv\n"
    )
    assert problems(manifest, env={"SECRET": "s"}) == [
        f"{manifest}:7:20: accounts[0].channels_file: cannot read {tmp_path / 'missing.csv'}: "
        "No such file or directory"
    ]
