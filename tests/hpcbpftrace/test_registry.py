"""The script registry: curated + admin scripts, validation, enable/disable/remove."""
from __future__ import annotations

import os
import stat

import pytest

from pmdas.hpcbpftrace.registry import ADMIN, CURATED, RegistryError, ScriptRegistry

SCRIPT = """// name: {name}
// description: count opens
// exports: @opens counter by comm unit count: files opened
tracepoint:syscalls:sys_enter_openat {{ @opens[comm] = count(); }}
interval:s:1 {{ print(@opens); }}
"""


@pytest.fixture
def registry(tmp_path):
    curated = tmp_path / "curated"
    curated.mkdir()
    (curated / "shipped.bt").write_text(SCRIPT.format(name="shipped"))
    (curated / "broken.bt").write_text("BEGIN {}\n")
    return ScriptRegistry(str(curated), str(tmp_path / "admin"), max_bytes=2048)


def test_lists_curated_scripts_and_reports_broken_headers(registry):
    scripts = registry.scripts()
    assert scripts["shipped"].origin == CURATED and scripts["shipped"].runnable
    assert not scripts["broken"].runnable and "name" in scripts["broken"].error
    assert scripts["shipped"].enabled       # enabled_by_default


def test_add_enable_disable_remove_roundtrip(registry, tmp_path):
    script = registry.add("mine", SCRIPT.format(name="mine"))
    assert script.origin == ADMIN and script.enabled and script.runnable
    assert os.path.isfile(tmp_path / "admin" / "mine.bt")
    assert not registry.disable("mine").enabled
    assert "mine" not in {s.name for s in registry.enabled()}
    # state survives a new registry object (an agent restart)
    again = ScriptRegistry(registry.curated_dir, registry.admin_dir)
    assert not again.get("mine").enabled
    assert again.enable("mine").enabled
    registry.remove("mine")
    assert "mine" not in registry.scripts()
    with pytest.raises(RegistryError, match="no bpftrace script named 'mine'"):
        registry.get("mine")


def test_curated_can_be_disabled_not_removed(registry):
    assert not registry.disable("shipped").enabled
    with pytest.raises(RegistryError, match="curated"):
        registry.remove("shipped")
    with pytest.raises(RegistryError, match="curated script"):
        registry.add("shipped", SCRIPT.format(name="shipped"))


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", "UP", "", ".hidden", "x" * 41,
                                  "state.json", "a\0b"])
def test_bad_names_are_refused_before_writing(registry, tmp_path, name):
    with pytest.raises(RegistryError, match="lower-case word"):
        registry.add(name, SCRIPT.format(name="ok"))
    assert not (tmp_path / "admin").exists() or os.listdir(tmp_path / "admin") == []


def test_size_limit_and_header_checks(registry):
    big = SCRIPT.format(name="big") + "// " + "x" * 4096 + "\n"
    with pytest.raises(RegistryError, match="over the limit of 2048"):
        registry.add("big", big)
    with pytest.raises(RegistryError, match="names it 'other'"):
        registry.add("mine", SCRIPT.format(name="other"))
    with pytest.raises(RegistryError, match="no '// name:'"):
        registry.add("mine", "BEGIN { exit(); }\n")
    with pytest.raises(RegistryError, match="never used"):
        registry.add("mine", SCRIPT.format(name="mine").replace("@opens[", "@x[").replace("(@opens)", "(@x)"))


def test_a_counter_that_would_go_backwards_is_refused(registry):
    cleared = SCRIPT.format(name="mine").replace("print(@opens); }", "print(@opens); clear(@opens); }")
    with pytest.raises(RegistryError, match="declared counter but the script clears it"):
        registry.add("mine", cleared)
    with pytest.raises(RegistryError, match="declared delta but never clear"):
        registry.add("mine", SCRIPT.format(name="mine").replace("@opens counter", "@opens delta"))
    assert registry.add("mine", cleared.replace("@opens counter", "@opens delta")).runnable


def test_unknown_names_for_enable(registry):
    with pytest.raises(RegistryError, match="no bpftrace script"):
        registry.enable("../../etc/shadow")


def test_oversized_file_dropped_in_by_hand_is_not_runnable(registry, tmp_path):
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "huge.bt").write_text(SCRIPT.format(name="huge") + "//" + "y" * 5000)
    assert "size limit" in registry.get("huge").error


def test_corrupt_state_file_falls_back_to_defaults(registry, tmp_path):
    registry.add("mine", SCRIPT.format(name="mine"), enable=False)
    (tmp_path / "admin" / "state.json").write_text("{not json")
    assert registry.get("mine").enabled      # default again, with a warning


def test_writes_reach_the_disk_before_and_after_the_rename(registry, tmp_path, monkeypatch):
    """File data synced, then renamed into place, then the directory synced (a crash right
    after a store must not leave an empty script or state file)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.path.basename(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    registry.add("mine", SCRIPT.format(name="mine"))
    assert events == [("fsync", "file"), ("rename", "mine.bt"), ("fsync", "dir"),
                      ("fsync", "file"), ("rename", "state.json"), ("fsync", "dir")]
    assert (tmp_path / "admin" / "mine.bt").read_text() == SCRIPT.format(name="mine")
    assert oct((tmp_path / "admin" / "mine.bt").stat().st_mode & 0o777) == "0o644"
    events.clear()
    registry.remove("mine")                 # the unlink is made durable with the state file
    assert events == [("fsync", "file"), ("rename", "state.json"), ("fsync", "dir")]
