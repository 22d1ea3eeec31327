"""Random bytes into every decoder: a DecodeError, or a value that re-encodes to the same bytes
and has a JSON form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec import DECODERS, DecodeError, decode, to_jsonable


@pytest.mark.parametrize("characteristic", sorted(DECODERS))
@given(payload=st.binary(max_size=32))
def test_random_bytes_never_crash_a_decoder(characteristic: str, payload: bytes) -> None:
    try:
        obj = decode(characteristic, payload)
    except DecodeError as exc:
        assert exc.characteristic == characteristic
        assert exc.payload == payload
        assert exc.reason
        return
    assert bytes(obj) == payload  # type: ignore[call-overload]
    json.dumps(to_jsonable(obj), allow_nan=False)  # whatever decodes can be shown as JSON


def test_every_supported_characteristic_is_fuzzed() -> None:
    assert sorted(DECODERS) == [
        "2A08",
        "2A18",
        "2A1C",
        "2A2B",
        "2A34",
        "2A35",
        "2A36",
        "2A49",
        "2A51",
        "2A52",
        "2A5E",
        "2A9D",
        "FLOAT",
        "SFLOAT",
    ]
