"""A hostile source server: names in its MLSD listing cannot lead outside the destination."""
from __future__ import annotations

import socket
import threading

import pytest

from dtn_transfer.endpoints import Endpoint
from dtn_transfer.options import RunOptions
from dtn_transfer.plan import PlanError, make_plan, walk_remote
from dtn_transfer.session import RunSession
from dtn_transfer.split import _delete_at_destination

HOSTILE = ["..", ".", "../../etc/cron.d/evil", "sub/../../x", "nul\0byte", "esc\x1b[2Jname", "tab\there"]


class ListingServer:
    """The least FTP server ftplib will list from: USER, PASS, TYPE, PASV, MLSD, QUIT; every
    directory lists the same entries (as a hostile server may)."""

    def __init__(self, entries: list[tuple[str, str, int]]):
        self.entries = entries
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.node = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.listed: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        data: socket.socket | None = None
        reader = conn.makefile("rb")
        conn.sendall(b"220 hostile\r\n")
        for raw in reader:
            command, _, arg = raw.decode("latin-1").rstrip("\r\n").partition(" ")
            command = command.upper()
            if command == "PASV":
                data = socket.create_server(("127.0.0.1", 0))
                port = data.getsockname()[1]
                conn.sendall(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})\r\n".encode())
            elif command == "MLSD" and data is not None:
                self.listed.append(arg)
                conn.sendall(b"150 listing\r\n")
                channel, _ = data.accept()
                lines = "".join(f"Type={t};Size={n};Modify=20261201000000; {name}\r\n"
                                for t, name, n in self.entries)
                channel.sendall(lines.encode("latin-1"))
                channel.close()
                data.close()
                data = None
                conn.sendall(b"226 done\r\n")
            elif command == "QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"230 ok\r\n" if command == "PASS" else b"200 ok\r\n" if command == "TYPE"
                             else b"331 ok\r\n" if command == "USER" else b"502 no\r\n")
        conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def hostile():
    server = ListingServer([("file", name, 10) for name in HOSTILE] + [("dir", "..", 0),
                                                                        ("file", "fine.dat", 10)])
    yield server
    server.close()


def test_hostile_names_are_refused_one_by_one_at_plan_time(hostile):
    found = {f.relpath: f for f in walk_remote(hostile.node, "/data")}
    good = [f for f in found.values() if f.problem is None]
    assert [f.relpath for f in good] == ["fine.dat"] and good[0].mtime == 1796083200.0
    refused = [f for f in found.values() if f.problem is not None]
    assert len(refused) == len(HOSTILE), "each refused name is reported once, not dropped"
    for f in refused:
        assert "/" not in f.relpath and f.relpath not in (".", ".."), f.relpath
        assert "\0" not in f.relpath and "\n" not in f.relpath
    assert hostile.listed == ["/data"], "a directory named '..' is never listed into"
    assert any("'/'" in f.problem for f in refused) and any("control" in f.problem for f in refused)


def test_a_run_from_a_hostile_source_writes_nothing_outside(hostile, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    files = [f for f in walk_remote(hostile.node, "/data") if f.problem is not None]
    plan = make_plan(Endpoint((hostile.node,), "/data"), Endpoint((), str(dest)), files, 1 << 20)
    session = RunSession.new(plan, RunOptions(retries=0), runs_base=str(tmp_path / "runs"))
    report = session.run()
    assert report.state == "incomplete" and len(report.not_transferred) == len(files)
    assert all(why.startswith("not sent: the source listed") for why in report.not_transferred.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "runs"]
    assert list(dest.iterdir()) == []


def test_split_never_deletes_outside_the_destination(hostile):
    plan = make_plan(Endpoint((hostile.node,), "/data"), Endpoint((hostile.node,), "/dest"), [], 1 << 20)
    for relpath in ("../etc/passwd", "a/../../b", "..", "x\0y"):
        with pytest.raises(PlanError, match="refusing"):
            _delete_at_destination(plan, [hostile.node], relpath)
