from bulkpolyv.signing import sign, signable_params, signed_params

VECTOR_SECRET = "fsq2k5weced1h8vui657xtdva66whf0g"
VECTOR_PARAMS = {
    "appId": "g4rqgmmjuo",
    "timestamp": "1660270926732",
    "channelIds": "2477096,2272655",
    "startDay": "2022-05-20",
    "endDay": "2022-06-18",
    "page": None,
    "size": None,
}


def test_reference_vector_matches_byte_for_byte():
    assert sign(VECTOR_PARAMS, VECTOR_SECRET) == "0D2BDA2FD04D93A2B8832B91FD973C4D"


def test_empty_none_and_blank_values_are_dropped():
    noisy = {**VECTOR_PARAMS, "a": "", "b": "   ", "c": None}
    assert sign(noisy, VECTOR_SECRET) == "0D2BDA2FD04D93A2B8832B91FD973C4D"
    assert set(signable_params(noisy)) == {"appId", "timestamp", "channelIds", "startDay", "endDay"}


def test_sign_itself_is_never_signed():
    with_sign = {**VECTOR_PARAMS, "sign": "WHATEVER"}
    assert sign(with_sign, VECTOR_SECRET) == "0D2BDA2FD04D93A2B8832B91FD973C4D"


def test_key_order_is_irrelevant():
    reversed_params = dict(reversed(list(VECTOR_PARAMS.items())))
    assert sign(reversed_params, VECTOR_SECRET) == sign(VECTOR_PARAMS, VECTOR_SECRET)


def test_non_ascii_values_are_hashed_as_utf8():
    import hashlib

    params = {"appId": "a", "nickname": "夜班"}
    expected = hashlib.md5("SappIdanickname夜班S".encode()).hexdigest().upper()
    assert sign(params, "S") == expected


def test_signed_params_take_a_fresh_timestamp_each_call():
    times = iter([1000.0, 1001.5])
    first = signed_params({"url": None}, app_id="app", app_secret="s", clock=lambda: next(times))
    second = signed_params({"url": None}, app_id="app", app_secret="s", clock=lambda: next(times))
    assert first["timestamp"] == "1000000" and second["timestamp"] == "1001500"
    assert first["sign"] != second["sign"]
    assert "url" not in first  # an empty value is neither signed nor sent
    assert first["sign"] == sign({"appId": "app", "timestamp": "1000000"}, "s")
