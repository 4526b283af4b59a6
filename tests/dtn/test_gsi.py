"""GSI transfers: X.509 credentials from a CA made with Debian's GSI tools, GSI-only servers.

Loopback servers (``servers``) and a testbed (two namespaced clusters) refuse anonymous
logins; dtn-transfer authenticates globus-url-copy and its own control connections
(listing with MLSC, SIZE, CKSM) with the user's proxy.  Refusals are the servers' own:
an unknown CA, a subject missing from the grid-mapfile, an anonymous login.
"""
import ftplib
import json
import os
import subprocess

import pytest

from dtn_lab.testbed.gsi import GsiFiles
from dtn_transfer import gsi
from dtn_transfer.batchrun import batch_argv
from dtn_transfer.endpoints import EndpointError, parse_endpoint
from dtn_transfer.options import RunOptions
from dtn_transfer.plan import walk_remote
from dtn_transfer.schedule import Batch
from dtn_transfer.tuning import Tuning

from .conftest import dtn, identical, make_files, needs_gridftp, needs_testbed, run_dirs
from .testbed_support import cli, lab, name_and_subnet, state_dir, up, worker_index


def node(servers, i):
    return servers[i].node


def test_bare_endpoints_are_gsi_and_ftp_needs_anonymous():
    assert parse_endpoint("h:2811/d").scheme == "gsiftp"
    assert parse_endpoint("gsiftp://h:2811,g:2811/d").nodes == ("h:2811", "g:2811")
    assert parse_endpoint("h:2811/d", anonymous=True).url("h:2811", "x y") == "ftp://h:2811/d/x%20y"
    with pytest.raises(EndpointError, match="--anonymous"):
        parse_endpoint("ftp://h:2811/d")
    with pytest.raises(EndpointError, match="contradict"):
        parse_endpoint("gsiftp://h:2811/d", anonymous=True)
    with pytest.raises(EndpointError, match="not supported"):
        parse_endpoint("sshftp://h:2811/d")
    gsi_end = parse_endpoint("h:2811/d")
    assert gsi_end.nameable("caf\u00e9/\u00fcber") and not gsi_end.nameable("a\nb")
    assert not parse_endpoint("h:2811/d", anonymous=True).nameable("caf\u00e9")


def test_data_channel_levels_become_globus_url_copy_flags():
    tuning = Tuning(concurrency=1, parallelism=4, pipelining=False)
    batch = Batch(pair=0, bin="large", files=(), tuning=tuning)
    for level, flag in (("private", "-dcpriv"), ("safe", "-dcsafe"), ("clear", "-nodcau")):
        assert flag in batch_argv(batch, RunOptions(data_channel=level), "l", "d", True)
    default = batch_argv(batch, RunOptions(), "l", "d", True)
    assert not {"-dcpriv", "-dcsafe", "-nodcau"} & set(default), "DCAU (authenticated) is GridFTP's default"


@needs_gridftp
def test_gsi_transfer_with_utf8_names_listing_and_checksums(world, servers):
    """Listing (MLSC), SIZE and CKSM over the protected control channel; UTF-8 names pass."""
    spec = {"caf\u00e9 \u00fcber.dat": 70_000, "\u65e5\u672c/\u30c7\u30fc\u30bf.bin": 2_000_000,
            "plain.bin": 5000, "with space/q'uote.txt": 100}
    make_files(world / "src", spec)
    out = dtn(world, "run", f"{node(servers, 0)},{node(servers, 1)}{world}/src",
              f"gsiftp://{node(servers, 2)},{node(servers, 3)}{world}/dst", "--verify", "--dcpriv",
              "--json", check=0)
    report = json.loads(out.stdout)
    assert report["not_transferred"] == [] and report["files"]["done"] == len(spec)
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / rel), rel
    owners = {(world / "dst" / rel).stat().st_uid for rel in spec}
    assert owners == {65534}, "written as the grid-mapfile's account (nobody)"
    plan = json.loads((run_dirs(world)[0] / "plan.json").read_text())
    assert plan["source"]["scheme"] == plan["dest"]["scheme"] == "gsiftp"


@needs_gridftp
def test_control_client_speaks_gsi(servers, world, gsi_files):
    make_files(world / "src", {"a\u00e9.bin": 1234})
    creds = gsi.Credentials.find(environ=gsi_files.client_environment())
    ftp = gsi.connect(node(servers, 0), creds)
    try:
        lines = []
        ftp.retrlines(f"MLSD {world}/src", lines.append)
        assert any(line.endswith(" a\u00e9.bin".encode().decode("latin-1")) for line in lines), lines
        path = f"{world}/src/a\u00e9.bin".encode().decode("latin-1")
        assert ftp.sendcmd(f"SIZE {path}") == "213 1234"
        ftp.sock.sendall(f"SIZE {path}\r\nSIZE {world}/nothing\r\nSIZE {path}\r\n".encode("latin-1"))
        assert ftp.getresp() == "213 1234"
        with pytest.raises(ftplib.error_perm):
            ftp.getresp()
        assert ftp.getresp() == "213 1234", "pipelined commands each wrapped, replies in order"
        assert len(ftp.sendcmd(f"CKSM MD5 0 -1 {path}").split()[1]) == 32
    finally:
        ftp.quit()


@needs_gridftp
def test_servers_refuse_anonymous_unknown_ca_and_unmapped_subjects(world, servers, gsi_files):
    make_files(world / "src", {"a.bin": 1000})
    src, dst = f"{node(servers, 0)}{world}/src", f"{node(servers, 2)}{world}/dst"

    anonymous = dtn(world, "run", src, dst, "--anonymous", check=3)
    assert "530 Must perform GSSAPI authentication" in anonymous.stderr

    rogue = GsiFiles(f"/tmp/dtn-test-gsi-rogue-{worker_index()}", "rogue").ensure([])
    unknown_ca = dtn(world, "run", src, dst, "--proxy", rogue.proxy, check=3)
    assert "refused the GSI login" in unknown_ca.stderr
    assert "Cannot find trusted CA certificate" in unknown_ca.stderr, unknown_ca.stderr

    stranger = gsi_files.other_user("not in the gridmap")
    unmapped = dtn(world, "run", src, dst, "--proxy", stranger, check=3)
    assert "Gridmap lookup failure" in unmapped.stderr and "not in the gridmap" in unmapped.stderr

    none = dtn(world, "run", src, dst, "--proxy", str(world / "no-such-proxy"), check=3)
    assert "does not exist" in none.stderr
    assert not (world / "dst" / "a.bin").exists()


@needs_gridftp
def test_globus_url_copy_itself_is_refused_with_a_stranger_proxy(world, servers, gsi_files):
    """The refusal is the server's, not only dtn-transfer's: raw globus-url-copy gets it too."""
    make_files(world / "src", {"a.bin": 1000})
    env = {**os.environ, **gsi_files.client_environment(),
           "X509_USER_PROXY": gsi_files.other_user("not in the gridmap")}
    done = subprocess.run(["globus-url-copy", f"gsiftp://{node(servers, 0)}{world}/src/a.bin",
                           f"file://{world}/a.bin"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Gridmap lookup failure" in done.stderr
    # globus-url-copy opens the local file before the source refuses: empty, never data
    assert not (world / "a.bin").exists() or (world / "a.bin").stat().st_size == 0


@needs_gridftp
def test_anonymous_mode_needs_the_flag(world, anonymous_servers):
    make_files(world / "src", {"a.bin": 1000})
    src = f"ftp://{node(anonymous_servers, 0)}{world}/src"
    dst = f"ftp://{node(anonymous_servers, 2)}{world}/dst"
    refused = dtn(world, "run", src, dst, check=2)
    assert "pass --anonymous" in refused.stderr
    dtn(world, "run", src, dst, "--anonymous", "--dcpriv", check=2)     # nothing to protect
    dtn(world, "run", src, dst, "--anonymous", "-q", check=0)
    assert identical(world / "src" / "a.bin", world / "dst" / "a.bin")


@needs_testbed
def test_gsi_transfer_between_testbed_clusters():
    """The testbed is GSI by default: its servers refuse anonymous logins, and a transfer
    with the testbed's proxy (from `dtn-lab testbed env`) arrives verified."""
    with state_dir():
        bed = up("g", 4, source_nodes=1, dest_nodes=1, datasets=("small",), scale=0.05)
        try:
            status = bed.status()
            assert status["healthy"] and status["security"]["scheme"] == "gsiftp"
            env = lab("testbed", "env", "--name", bed.layout.name)
            assert f"export X509_USER_PROXY={bed.layout.gsi_root}/user/proxy.pem" in env.stdout
            src, dst = bed.endpoints("small")
            assert src.startswith("gsiftp://") and dst.startswith("gsiftp://")
            anonymous = ftplib.FTP()
            anonymous.connect(bed.nodes("dest")[0].address, 2811, timeout=5)
            with pytest.raises(ftplib.error_perm, match="530"):
                anonymous.login()
            anonymous.close()
            out = cli("run", src, dst, "--verify", "--json")
            assert out.returncode == 0, out.stdout + out.stderr
            report = json.loads(out.stdout)
            assert report["files"]["done"] == bed.layout.datasets["small"]["files"] > 0
            for directory, _dirs, names in os.walk(bed.layout.source_dir("small")):
                for name in names:
                    rel = os.path.relpath(os.path.join(directory, name), bed.layout.source_dir("small"))
                    with open(os.path.join(bed.layout.dest_dir("small"), rel), "rb") as got, \
                            open(os.path.join(directory, name), "rb") as want:
                        assert got.read() == want.read(), rel
        finally:
            lab("testbed", "down", "--name", bed.layout.name)
        assert not os.path.exists(bed.layout.gsi_root), "down removes the testbed's CA and proxy"


@needs_gridftp
def test_a_big_directory_lists_completely_over_gsi(world, servers):
    """The server answers MLSC of a big directory in several 150 replies before the 250:
    every one of them is read (before: the first 150 failed the listing)."""
    names = {f"f{i:05d}" for i in range(2500)}
    for name in names:
        (world / "src" / name).touch()
    listed = walk_remote(node(servers, 0), f"{world}/src", scheme="gsiftp")
    assert {f.relpath for f in listed} == names


@needs_testbed
def test_an_anonymous_testbed_is_asked_for_and_so_are_its_transfers():
    with state_dir():
        name, subnet = name_and_subnet("a", 5)
        built = lab("testbed", "up", "--name", name, "--subnet", subnet, "--nodes", "1", "--anonymous",
                    "--datasets", "small", "--scale", "0.02", "--root", f"/tmp/{name}-data")
        try:
            assert built.returncode == 0, built.stderr
            assert "anonymous ftp://" in built.stdout
            ends = lab("testbed", "endpoints", "small", "--name", name)
            src, dst = ends.stdout.split()
            assert src.startswith("ftp://") and dst.startswith("ftp://")
            assert lab("testbed", "env", "--name", name).stdout == "", "no credentials to export"
            refused = cli("run", src, dst)
            assert refused.returncode == 2 and "pass --anonymous" in refused.stderr
            out = cli("run", src, dst, "--anonymous", "--json")
            assert out.returncode == 0, out.stdout + out.stderr
            assert json.loads(out.stdout)["files"]["failed"] == 0
        finally:
            lab("testbed", "down", "--name", name)
