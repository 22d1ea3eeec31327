"""Every shared vector, whatever its characteristic: JSON shape, typed errors, byte-exact encode.

The field-by-field comparisons live beside each profile's tests (test_codec_vectors.py,
test_codec_vectors_other.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.codec import DECODERS, DecodeError, decode, to_jsonable
from tests.unit.codec.shared_vectors import assert_subset, load_vectors, split

VECTORS, LOAD_ERROR = load_vectors(DECODERS)
GOOD, BAD = split(VECTORS)


def test_every_shared_vector_is_exercised() -> None:
    assert LOAD_ERROR is None, LOAD_ERROR
    # vectors.json holds 98 vectors, every one of a characteristic we decode; pinned so that a
    # filter or a renamed field cannot silently empty the table.
    assert (len(GOOD), len(BAD)) == (85, 13)


@pytest.mark.parametrize("vector", GOOD)
def test_to_jsonable_has_the_vector_shape(vector: dict[str, Any]) -> None:
    obj = decode(vector["characteristic"], bytes.fromhex(vector["hex"]))
    document = to_jsonable(obj)
    json.dumps(document, allow_nan=False)
    assert_subset(document, vector["expected"])


@pytest.mark.parametrize("vector", BAD)
def test_malformed_vectors_raise_decode_error(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    with pytest.raises(DecodeError) as info:
        decode(vector["characteristic"], payload)
    error = info.value
    assert vector["expected"]["error"] in error.reason
    assert error.characteristic == vector["characteristic"]
    assert error.payload == payload
    assert vector["hex"] in str(error) and error.reason in str(error)


@pytest.mark.parametrize("vector", GOOD)
def test_encode_is_byte_exact(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    obj = decode(vector["characteristic"], payload)
    assert bytes(obj) == payload  # type: ignore[call-overload]
    assert decode(vector["characteristic"], bytes(obj)) == obj  # type: ignore[call-overload]
