"""Bad input: failing reads, vanishing devices, resets, hangs, random damage."""
from __future__ import annotations

import errno
import os
import shutil
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmdas.common.sources import SourceError
from pmdas.hpcib import sysfs

from .helpers import class_dir, copy_tree, metric, port_file, read_int, refresher, tree, write


def test_einval_on_one_counter(monkeypatch):
    real = sysfs.read_attribute

    def flaky(path):
        if path.endswith(os.path.join("mlx5_0", "ports", "1", "counters", "symbol_error")):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        return real(path)

    monkeypatch.setattr(sysfs, "read_attribute", flaky)
    published = refresher(tree("mlx5")).refresh_once()
    assert "mlx5_0:1" not in metric(published, "port.errors.symbol")
    assert "mlx5_1:1" in metric(published, "port.errors.symbol")
    assert metric(published, "port.errors.rcv")["mlx5_0:1"] == read_int(
        tree("mlx5"), "mlx5_0", 1, "counters/port_rcv_errors")
    assert metric(published, "port.error_text")["mlx5_0:1"] == \
        "counters/symbol_error: could not be read: Invalid argument"
    assert metric(published, "agent.up") == 1


def test_einval_on_rate_leaves_state(monkeypatch):
    real = sysfs.read_attribute
    monkeypatch.setattr(sysfs, "read_attribute", lambda path: (
        (_ for _ in ()).throw(OSError(errno.EINVAL, "Invalid argument")) if path.endswith("/rate")
        else real(path)))
    published = refresher(tree("mlx5")).refresh_once()
    assert metric(published, "port.rate") == {}
    assert metric(published, "port.state") == {"mlx5_0:1": 4, "mlx5_1:1": 4}
    assert "rate: could not be read" in metric(published, "port.error_text")["mlx5_1:1"]


def test_directory_in_place_of_a_file(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    path = port_file(root, "mlx5_0", 1, "counters/port_xmit_discards")
    os.unlink(path)
    os.mkdir(path)
    published = refresher(root).refresh_once()
    assert "mlx5_0:1" not in metric(published, "port.errors.xmit_discards")
    assert "Is a directory" in metric(published, "port.error_text")["mlx5_0:1"]
    assert "mlx5_0:1" in metric(published, "port.xmit.bytes")


def test_no_infiniband_class(tmp_path):
    published = refresher(str(tmp_path)).refresh_once()
    assert metric(published, "agent.up") == 0
    assert "does not exist" in metric(published, "agent.source.error")["devices"]
    assert published.instances["port"] == {}
    assert metric(published, "total.ports") == 0


def test_device_vanishes_before_its_read(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    os.unlink(os.path.join(class_dir(root), "mlx5_1"))
    try:
        sysfs.read_ca(class_dir(root), "mlx5_1")
    except SourceError as exc:
        assert "mlx5_1" in str(exc)
    else:
        raise AssertionError("reading a vanished device must raise SourceError")


def test_devices_and_ports_come_and_go(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    r = refresher(root)
    first = r.refresh_once()
    ids = {k: v[0] for k, v in first.instances["port"].items()}
    total = metric(first, "total.xmit.bytes")
    link = os.path.join(class_dir(root), "mlx5_1")
    target = os.readlink(link)
    os.unlink(link)
    second = r.refresh_once()
    assert set(second.instances["port"]) == {"mlx5_0:1"}
    assert metric(second, "total.xmit.bytes") == total    # a vanished port does not lower the total
    assert metric(second, "agent.up") == 1
    os.symlink(target, link)                             # the device is back
    new_port = os.path.join(class_dir(root), "mlx5_0", "ports", "2")
    shutil.copytree(os.path.join(class_dir(root), "mlx5_0", "ports", "1"), new_port)
    third = r.refresh_once()
    assert set(third.instances["port"]) == {"mlx5_0:1", "mlx5_0:2", "mlx5_1:1"}
    assert {k: third.instances["port"][k][0] for k in ids} == ids   # instance ids are stable
    # neither the new port's lifetime count nor the returning one's unchanged count is traffic
    assert metric(third, "port.xmit.bytes")["mlx5_0:2"] > 0
    assert metric(third, "total.xmit.bytes") == total


def test_counter_reset_is_unavailable_once_and_reported(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    r = refresher(root)
    first = r.refresh_once()
    before = metric(first, "total.xmit.bytes")
    path = port_file(root, "mlx5_0", 1, "counters/port_xmit_data")
    write(path, "1000\n")                                 # perfquery -R, then a little traffic
    second = r.refresh_once()
    assert "mlx5_0:1" not in metric(second, "port.xmit.bytes")
    assert metric(second, "port.xmit.bytes")["mlx5_1:1"] == metric(first, "port.xmit.bytes")["mlx5_1:1"]
    assert "went backwards" in metric(second, "port.error_text")["mlx5_0:1"]
    assert metric(second, "port.counter_resets")["mlx5_0:1"] == 1
    assert metric(second, "total.xmit.bytes") == before + 4000     # counts since the reset
    write(path, "3000\n")
    third = r.refresh_once()
    assert metric(third, "port.xmit.bytes")["mlx5_0:1"] == 12000
    assert metric(third, "port.error_text")["mlx5_0:1"] == ""
    assert metric(third, "total.xmit.bytes") == before + 12000


def test_hw_counter_reset(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    r = refresher(root)
    r.refresh_once()
    write(port_file(root, "mlx5_1", 1, "hw_counters/np_cnp_sent"), "0\n")
    published = r.refresh_once()
    assert "mlx5_1:1:np_cnp_sent" not in metric(published, "port.hw_counter")
    assert "mlx5_1:1:rp_cnp_handled" in metric(published, "port.hw_counter")
    assert "hw_counters/np_cnp_sent: went backwards" in metric(published, "port.error_text")["mlx5_1:1"]


def test_hung_device_times_out_alone(monkeypatch):
    release = threading.Event()
    real = sysfs.read_ca

    def slow(class_dir_, name, hw=True):
        if name == "mlx5_1":
            release.wait(5)
        return real(class_dir_, name, hw)

    monkeypatch.setattr("pmdas.hpcib.collector.read_ca", slow)
    try:
        published = refresher(tree("mlx5"), timeout=0.2).refresh_once()
    finally:
        release.set()
    assert "timed out" in metric(published, "agent.source.error")["mlx5_1"]
    assert set(published.instances["port"]) == {"mlx5_0:1"}
    assert metric(published, "agent.up") == 0


def test_saturation_is_detected_in_place(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    write(port_file(root, "mlx5_1", 1, "counters/local_link_integrity_errors"), "15\n")
    published = refresher(root).refresh_once()
    assert metric(published, "port.saturated") == {"mlx5_0:1": 0, "mlx5_1:1": 1}
    assert metric(published, "port.saturated_counters")["mlx5_1:1"] == "local_link_integrity_errors"


DAMAGE = st.one_of(st.binary(max_size=40), st.sampled_from(
    [b"N/A (no PMA)\n", b"", b"\n", b"-5\n", b"99999999999999999999999\n", b"0x12\n", b"4: \n"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_breaks_a_refresh(tmp_path_factory, data):
    root = copy_tree("mlx5", str(tmp_path_factory.mktemp("damage")))
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    victims = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=8, unique=True))
    for path in victims:
        with open(path, "wb") as f:
            f.write(data.draw(DAMAGE))
    r = refresher(root)
    for _ in range(2):
        published = r.refresh_once()
        assert metric(published, "agent.extractor_errors") == 0
        assert set(published.instances["port"]) == {"mlx5_0:1", "mlx5_1:1"}
        assert metric(published, "total.ports") == 2
