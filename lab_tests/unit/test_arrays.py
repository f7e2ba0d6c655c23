"""The numeric-array content type and its negative control, on one machine.

On one CPU the other byte order is produced by encoding it explicitly; the cross-CPU proof is
lab_tests/guest/.
"""

import struct
import sys

import pytest
from hypothesis import given, strategies as st

from socketlab import arrays
from socketlab.demo import expected_values
from socketlab.protocol import LocalProtocolError, Message, RemoteProtocolError


NATIVE = sys.byteorder
FOREIGN = "big" if NATIVE == "little" else "little"


def array_message(values, dtype, byteorder) -> Message:
    content = arrays.encode_array(values, dtype, byteorder)
    return Message({"byteorder": byteorder, "content-type": arrays.array_content_type(dtype),
                    "content-encoding": "binary", "content-length": len(content)}, content)


@pytest.mark.parametrize("dtype", list(arrays.DTYPES))
@pytest.mark.parametrize("byteorder", ["little", "big", "network"])
def test_decoder_follows_the_declared_byte_order(dtype, byteorder):
    values = expected_values(dtype)
    assert arrays.decode_array(array_message(values, dtype, byteorder)).tolist() == values


@pytest.mark.parametrize("dtype", list(arrays.DTYPES))
def test_wire_bytes_are_the_declared_order(dtype):
    values = expected_values(dtype)
    code = arrays.DTYPES[dtype]
    assert arrays.encode_array(values, dtype, "big") == struct.pack(f">{len(values)}{code}", *values)
    assert arrays.encode_array(values, dtype, "little") == struct.pack(f"<{len(values)}{code}", *values)
    assert arrays.encode_array(values, dtype, "network") == arrays.encode_array(values, dtype, "big")


@pytest.mark.parametrize("dtype", list(arrays.DTYPES))
def test_negative_control_naive_decoder_is_wrong_across_byte_orders(dtype):
    values = expected_values(dtype)
    # Same order as this CPU: the bug is invisible...
    assert arrays.decode_array_naive(array_message(values, dtype, NATIVE)).tolist() == values
    # ...the other order: the naive decoder gets different numbers, the real one does not.
    foreign = array_message(values, dtype, FOREIGN)
    assert arrays.decode_array_naive(foreign).tolist() != values
    assert arrays.decode_array(foreign).tolist() == values


INT_RANGES = {d: (-(2 ** (8 * struct.calcsize(c) - 1)), 2 ** (8 * struct.calcsize(c) - 1) - 1)
              if c.islower() else (0, 2 ** (8 * struct.calcsize(c)) - 1)
              for d, c in arrays.DTYPES.items() if not d.startswith("float")}


@given(data=st.data(), dtype=st.sampled_from(sorted(INT_RANGES)),
       byteorder=st.sampled_from(["little", "big", "network"]))
def test_integer_round_trip_property(data, dtype, byteorder):
    lo, hi = INT_RANGES[dtype]
    values = data.draw(st.lists(st.integers(lo, hi), max_size=50))
    assert arrays.decode_array(array_message(values, dtype, byteorder)).tolist() == values


@given(values=st.lists(st.floats(allow_nan=False), max_size=50),
       byteorder=st.sampled_from(["little", "big"]))
def test_float64_round_trip_property(values, byteorder):
    assert arrays.decode_array(array_message(values, "float64", byteorder)).tolist() == values


def test_stats_are_exact():
    assert arrays.array_stats([2**63 - 1, 2**63 - 1]) == {
        "count": 2, "sum": 2**64 - 2, "min": 2**63 - 1, "max": 2**63 - 1}
    assert arrays.array_stats([0.1] * 10)["sum"] == 1.0
    assert arrays.array_stats([]) == {"count": 0, "sum": 0, "min": None, "max": None}


def test_bad_arrays_name_the_bad_value():
    with pytest.raises(RemoteProtocolError, match="7 content bytes is not a whole number of int32"):
        arrays.decode_array(Message({"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype=int32",
                                     "content-encoding": "binary", "content-length": 7}, b"\0" * 7))
    with pytest.raises(RemoteProtocolError, match="unknown dtype 'int12'"):
        arrays.decode_array(Message({"byteorder": "big", "content-type": "binary/x-socketlab-array; dtype=int12",
                                     "content-encoding": "binary", "content-length": 0}, b""))
    with pytest.raises(RemoteProtocolError, match="unknown dtype None"):
        arrays.decode_array(Message({"byteorder": "big", "content-type": "binary/x-socketlab-array",
                                     "content-encoding": "binary", "content-length": 0}, b""))
    with pytest.raises(LocalProtocolError, match=r"cannot pack \[70000\] as int16"):
        arrays.encode_array([70000], "int16", "big")
    with pytest.raises(LocalProtocolError, match="unknown dtype 'complex'"):
        arrays.encode_array([1], "complex", "big")
