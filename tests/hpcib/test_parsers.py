"""Table-driven and property tests of the pure sysfs parsers."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcib import parsers as p

COUNTER_CASES = [
    ("0\n", 0),
    ("4294967295\n", 2**32 - 1),
    ("18446744073709551615\n", 2**64 - 1),
    ("  42  \n", 42),
    ("1386429937515\n", 1386429937515),
]
BAD_COUNTERS = [
    ("N/A (no PMA)\n", "performance management agent"),
    ("\n", "empty"),
    ("", "empty"),
    ("-1\n", "not a counter"),
    ("0x10\n", "not a counter"),
    ("12 34\n", "not a counter"),
    ("١٢\n", "not a counter"),                        # non-ASCII digits
    ("18446744073709551616\n", "larger than a 64-bit"),
    ("\ufffd\ufffd7\n", "not a counter"),
]


@pytest.mark.parametrize("text,expected", COUNTER_CASES)
def test_parse_counter(text, expected):
    assert p.parse_counter(text) == expected


@pytest.mark.parametrize("text,reason", BAD_COUNTERS)
def test_parse_counter_rejects_with_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        p.parse_counter(text)


STATE_CASES = [
    ("4: ACTIVE\n", (4, "ACTIVE")),
    ("1: DOWN\n", (1, "DOWN")),
    ("5: ACTIVE_DEFER\n", (5, "ACTIVE_DEFER")),
    ("5: LinkUp\n", (5, "LinkUp")),
    ("7: Phy Test\n", (7, "Phy Test")),               # phys_state names may contain a space
    ("4: PortConfigurationTraining\n", (4, "PortConfigurationTraining")),
    ("0: <unknown>\n", (0, "<unknown>")),
]


@pytest.mark.parametrize("text,expected", STATE_CASES)
def test_parse_state(text, expected):
    assert p.parse_state(text) == expected


@pytest.mark.parametrize("text", ["ACTIVE\n", "4 ACTIVE\n", ":ACTIVE\n", "", "x: y\n"])
def test_parse_state_rejects(text):
    with pytest.raises(ValueError):
        p.parse_state(text)


RATE_CASES = [
    ("100 Gb/sec (4X EDR)\n", 100 * 10**9, "4X", "EDR"),
    ("2.5 Gb/sec (1X SDR)\n", 2_500_000_000, "1X", "SDR"),
    ("56 Gb/sec (4X FDR)\n", 56 * 10**9, "4X", "FDR"),
    ("40 Gb/sec (4X FDR10)\n", 40 * 10**9, "4X", "FDR10"),
    ("600 Gb/sec (12X HDR)\n", 600 * 10**9, "12X", "HDR"),
    ("25 Gb/sec (1X EDR)\n", 25 * 10**9, "1X", "EDR"),
    ("10 Gb/sec (4X)\n", 10 * 10**9, "4X", ""),      # older kernels: no speed name for SDR
    ("13.64 Gb/sec\n", 13_640_000_000, "", ""),
]


@pytest.mark.parametrize("text,bits,width,speed", RATE_CASES)
def test_parse_rate(text, bits, width, speed):
    assert p.parse_rate(text) == p.Rate(bits, width, speed)


@pytest.mark.parametrize("text", ["100 Gb/s (4X EDR)\n", "fast\n", "", "Gb/sec (4X EDR)\n"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError):
        p.parse_rate(text)


@pytest.mark.parametrize("text,expected", [("0x0\n", 0), ("0x1a7\n", 0x1A7), ("0xffff\n", 0xFFFF),
                                           ("0X1\n", 1)])
def test_parse_lid(text, expected):
    assert p.parse_lid(text) == expected


@pytest.mark.parametrize("text", ["17\n", "0x\n", "0x10000\n", "lid\n", ""])
def test_parse_lid_rejects(text):
    with pytest.raises(ValueError):
        p.parse_lid(text)


@pytest.mark.parametrize("text,expected", [("248a:0703:00b4:7a96\n", "248a:0703:00b4:7a96"),
                                           ("B8CE:F603:00A1:2B3C\n", "b8ce:f603:00a1:2b3c")])
def test_parse_guid(text, expected):
    assert p.parse_guid(text) == expected


@pytest.mark.parametrize("text", ["248a07030b47a96\n", "248a:0703:00b4\n", "zzzz:0703:00b4:7a96\n"])
def test_parse_guid_rejects(text):
    with pytest.raises(ValueError):
        p.parse_guid(text)


def test_parse_text_keeps_inner_spaces_and_rejects_empty():
    board = "Intel Omni-Path Host Fabric Interface Adapter 100 Series"
    assert p.parse_text(board + "\n") == board
    with pytest.raises(ValueError):
        p.parse_text("\n")
    with pytest.raises(ValueError):
        p.parse_text("a\x00b\n")


@pytest.mark.parametrize("value,width,expected", [
    (2**32 - 1, 32, True), (2**32 - 2, 32, False), (65535, 16, True), (255, 8, True),
    (15, 4, True), (14, 4, False), (2**64 - 1, 64, False), (0, 4, False),
])
def test_saturated(value, width, expected):
    assert p.saturated(value, width) is expected


@pytest.mark.parametrize("value,width,expected", [(2**32 - 1, 32, 32), (2**32, 32, 64), (70000, 16, 64),
                                                  (3, 16, 16)])
def test_effective_width(value, width, expected):
    assert p.effective_width(value, width) == expected


# -- properties ---------------------------------------------------------------

@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_counter_round_trip(value):
    assert p.parse_counter(f"{value}\n") == value


@given(st.integers(min_value=0, max_value=15), st.text(alphabet=st.characters(
    min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
def test_state_round_trip(number, name):
    assert p.parse_state(f"{number}: {name}\n") == (number, name)


WIDTHS = [1, 2, 4, 8, 12]
SPEEDS = ["SDR", "DDR", "QDR", "FDR10", "FDR", "EDR", "HDR", "NDR", "XDR"]


@given(st.integers(min_value=1, max_value=20000), st.sampled_from(WIDTHS), st.sampled_from(SPEEDS))
def test_rate_matches_kernel_format(tenths, width, speed):
    """The kernel prints rate/10 and '.5' when rate%10 != 0 (drivers/infiniband/core/sysfs.c)."""
    text = f"{tenths // 10}{'.5' if tenths % 10 else ''} Gb/sec ({width}X {speed})\n"
    parsed = p.parse_rate(text)
    expected = (tenths // 10) * 10**9 + (500_000_000 if tenths % 10 else 0)
    assert parsed == p.Rate(expected, f"{width}X", speed)


PARSERS = [p.parse_counter, p.parse_state, p.parse_rate, p.parse_lid, p.parse_guid, p.parse_text]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda f: f.__name__)
@given(text=st.text(max_size=80))
def test_parsers_fail_only_with_value_error(parse, text):
    """Arbitrary text either parses or raises ValueError with a non-empty reason."""
    try:
        parse(text)
    except ValueError as exc:
        assert str(exc)


@given(st.binary(max_size=64))
def test_counter_on_decoded_bytes(data):
    text = data.decode("utf-8", "replace")
    try:
        value = p.parse_counter(text)
    except ValueError:
        return
    assert 0 <= value < 2**64 and text.strip().isdigit()
