"""The testbed with a real round-trip time: the delay line's RTT and loss, window-limited TCP,
and a `down` that leaves nothing (namespaces, links, TAP devices, forwarder)."""
import os
import subprocess

import pytest

from dtn_lab.path import testbed_path as figures_of
from dtn_lab.testbed import Testbed, TestbedError
from dtn_lab.testbed import wan as tb_wan
from dtn_lab.testbed.cli import parse_duration_ms, parse_fraction
from dtn_lab.testbed.datasets import SHAPES, file_sizes
from dtn_lab.testbed.layout import DEST, SOURCE, LayoutError, plan_layout
from dtn_lab.testbed.shaping import Shape, egress_commands, ingress_commands, wan_sysctls
from dtn_transfer.tuning import PathFigures, duty_cycle, model_tuning

from .conftest import needs_testbed
from .testbed_support import MIB, delay_line_leftovers, lab, leftovers, rtt_name_and_subnet, state_dir

RTT_MS = 100.0
NODE_RATE = 16 * MIB
SMALL_BUFFER = 256 << 10


# -- pure parts ---------------------------------------------------------------------------

def test_rtt_and_loss_options_parse_and_validate():
    assert parse_duration_ms("130ms") == 130.0
    assert parse_duration_ms("0.01s") == 10.0
    assert parse_duration_ms("25") == 25.0
    assert parse_fraction("0.01%") == pytest.approx(1e-4)
    assert parse_fraction("0.001") == pytest.approx(1e-3)
    for bad in ("fast", "-3ms"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
    with pytest.raises(ValueError):
        parse_fraction("120%")
    with pytest.raises(LayoutError, match="loss"):
        plan_layout("rttv", 1, 1, subnet="10.91.250.0/24", rtt_ms=10, loss=0.6)
    with pytest.raises(LayoutError, match="round-trip"):
        plan_layout("rttv", 1, 1, subnet="10.91.250.0/24", rtt_ms=-1)


def test_a_delayed_layout_splits_the_wan_and_caps_tcp_buffers():
    plain = plan_layout("rttv", 2, 2, subnet="10.91.250.0/24")
    assert not plain.delayed and {plain.bridge(SOURCE), plain.bridge(DEST)} == {"br0"}
    delayed = plan_layout("rttv", 2, 2, subnet="10.91.250.0/24", rtt_ms=130, flow_rate=None,
                          tcp_buffer=SMALL_BUFFER, congestion="reno")
    assert delayed.delayed and (delayed.bridge(SOURCE), delayed.bridge(DEST)) == ("br0", "br1")
    assert delayed.to_json()["rtt_ms"] == 130.0
    sysctls = wan_sysctls(SMALL_BUFFER, "reno")
    assert sysctls["net.ipv4.tcp_rmem"].split()[-1] == str(SMALL_BUFFER)
    assert sysctls["net.ipv4.tcp_wmem"].split()[-1] == str(SMALL_BUFFER)
    assert sysctls["net.ipv4.tcp_congestion_control"] == "reno"
    queue = tb_wan.queue_bytes(delayed)
    egress = egress_commands("eth0", Shape(delayed.node_rate, None), queue)
    assert egress[-1].endswith(f"bfifo limit {queue}") and "parent 1:2" in egress[-1]
    assert ingress_commands("d1", delayed.node_rate, queue_bytes=queue)[-1].endswith(f"bfifo limit {queue}")
    assert not any("bfifo" in line for line in egress_commands("eth0", Shape(delayed.node_rate, None)))


def test_path_figures_behind_the_delay_line_are_window_over_rtt():
    delayed = plan_layout("rttv", 1, 1, subnet="10.91.250.0/24", rtt_ms=130, flow_rate=None,
                          node_rate=NODE_RATE, tcp_buffer=SMALL_BUFFER)
    path = figures_of(delayed)
    assert path.rtt == pytest.approx(0.13)
    assert path.stream_rate == pytest.approx(SMALL_BUFFER / 0.13, rel=1e-6)
    assert path.bandwidth == NODE_RATE
    capped = plan_layout("rttv", 1, 1, subnet="10.91.250.0/24", node_rate=NODE_RATE, flow_rate=MIB)
    assert (figures_of(capped).stream_rate, figures_of(capped).rtt) == (MIB, 0.0)


def test_the_model_counts_streams_at_their_duty_cycle_when_the_rtt_is_known():
    """At 130 ms the large set's 26 MB files ran 13% below C=4 P=8 at C=4 P=4 (the model's
    point without the RTT, which --auto could not leave within its budget)."""
    sizes = file_sizes(SHAPES["large"], 1.0)
    wan_path = PathFigures(bandwidth=8 * MIB, stream_rate=SMALL_BUFFER / 0.13, rtt=0.13)
    lan_path = PathFigures(bandwidth=8 * MIB, stream_rate=SMALL_BUFFER / 0.13)
    avg = sum(sizes) / len(sizes)
    assert duty_cycle(avg, 8, lan_path) == 1.0
    assert 0.5 < duty_cycle(avg, 8, wan_path) < 0.8
    assert duty_cycle(avg, 4, wan_path) > duty_cycle(avg, 8, wan_path), "fewer streams: longer data time"
    without = model_tuning(sizes, len(sizes), lan_path)
    with_rtt = model_tuning(sizes, len(sizes), wan_path)
    assert (without.concurrency, without.parallelism) == (4, 4)
    assert (with_rtt.concurrency, with_rtt.parallelism) == (4, 8)
    assert "streams busy" in with_rtt.reason and "streams busy" not in without.reason
    small = model_tuning(file_sizes(SHAPES["small"], 2.0), 800, wan_path)
    assert (small.concurrency, small.parallelism, small.pipelining) == (16, 1, True), "files, not streams"


# -- real delay line ------------------------------------------------------------------------

def _up(stem: str, slot: int, **options) -> Testbed:
    name, subnet = rtt_name_and_subnet(stem, slot)
    Testbed.down(name)
    return Testbed.up(name, 1, 1, datasets=(), subnet=subnet, root=f"/tmp/{name}-data", anonymous=True,
                      node_rate=NODE_RATE, flow_rate=None, **options)


@pytest.fixture(scope="module")
def bed():
    with state_dir():
        testbed = _up("w", 0, rtt_ms=RTT_MS, tcp_buffer=SMALL_BUFFER, congestion="reno")
        try:
            yield testbed
        finally:
            Testbed.down(testbed.layout.name)


def _stream(bed: Testbed, seconds: float = 4.0) -> dict:
    """One TCP stream from s1 to d1 through the delay line; its JSON report."""
    src, dst = bed.nodes(SOURCE)[0], bed.nodes(DEST)[0]
    sink = subprocess.Popen(["ip", "netns", "exec", dst.namespace, *tb_wan.probe_argv("sink")],
                            stdout=subprocess.PIPE, text=True, env=tb_wan.probe_env())
    try:
        assert "listening" in sink.stdout.readline()
        return tb_wan.probe(src.namespace, "send", dst.address, "--seconds", str(seconds))
    finally:
        sink.wait(10)


def _set_buffers(bed: Testbed, size: int) -> None:
    for node in bed.layout.nodes:
        for key, value in wan_sysctls(size, None).items():
            subprocess.run(["ip", "netns", "exec", node.namespace, "sysctl", "-q", "-w", f"{key}={value}"],
                           check=True)


@needs_testbed
def test_ping_through_the_delay_line_takes_the_rtt_it_is_set_to(bed):
    status = bed.status()
    assert status["healthy"] and status["wan"]["running"], status["wan"]
    assert status["wan"]["measured_rtt_ms"] == pytest.approx(RTT_MS, rel=0.03), "recorded by up"
    echo = tb_wan.ping(bed.layout, count=10)
    assert echo["lost"] == 0
    assert RTT_MS * 0.99 <= echo["min_ms"] and echo["median_ms"] <= RTT_MS * 1.03, echo


@needs_testbed
def test_one_stream_with_capped_buffers_is_window_limited_and_grows_with_them(bed):
    small = _stream(bed)
    window_rate = SMALL_BUFFER / (RTT_MS / 1000)
    assert small["srtt_ms"] >= RTT_MS * 0.98, small
    assert small["rate"] < 0.25 * NODE_RATE, f"far below the node cap: {small}"
    assert 0.3 * window_rate < small["rate"] < 1.1 * window_rate, f"about window/RTT: {small}"
    try:
        _set_buffers(bed, 4 * SMALL_BUFFER)
        large = _stream(bed)
    finally:
        _set_buffers(bed, SMALL_BUFFER)
    assert large["rate"] > 2.5 * small["rate"], (small, large)
    assert large["rate"] < NODE_RATE * 1.05, large


@needs_testbed
def test_loss_drops_about_the_set_fraction_and_down_leaves_nothing():
    with state_dir():
        loss = 0.05
        lossy = _up("l", 1, rtt_ms=10, loss=loss)
        name, pid = lossy.layout.name, lossy.layout.delay_line["pid"]
        assert delay_line_leftovers(name, pid)["recorded_pid_alive"]
        echo = tb_wan.ping(lossy.layout, count=300, interval=0.005, timeout=0.1)
        expected = 300 * (1 - (1 - loss) ** 2)          # an echo and its reply both cross the line
        assert 0.4 * expected <= echo["lost"] <= 1.7 * expected, echo["lost"]
        out = lab("testbed", "down", "--name", name)
        assert out.returncode == 0, out.stderr
        assert leftovers(name) == {"namespaces": [], "etc_netns": [], "host_link": [], "processes": []}
        assert delay_line_leftovers(name, pid) == {"forwarders": [], "recorded_pid_alive": False,
                                                   "root_taps": []}
        assert not os.path.exists(lossy.layout.root)


@needs_testbed
def test_up_refuses_a_subnet_in_use_and_starts_no_forwarder(bed):
    name, subnet = rtt_name_and_subnet("w", 0)
    assert bed.layout.name == name and bed.status()["healthy"]
    with pytest.raises(TestbedError, match="subnet"):
        Testbed.up("rttclash", 1, 1, datasets=(), subnet=subnet, root="/tmp/rttclash-data", rtt_ms=5)
    assert delay_line_leftovers("rttclash", None)["forwarders"] == []
