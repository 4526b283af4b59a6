"""Parsers of GridFTP transfer logs, MLSx and CKSM replies, and globus-url-copy error output."""
import os

from hypothesis import given
from hypothesis import strategies as st

from dtn_transfer.progress import (
    error_blocks,
    parse_cksm_reply,
    parse_log_time,
    parse_mlsx_line,
    parse_transfer_log,
    parse_transfer_log_line,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def test_transfer_log_lines_as_the_server_writes_them():
    records = parse_transfer_log(fixture("transfer.log"))
    assert len(records) == 5
    first = records[1]
    assert first.file == "/tmp/gt/src2/big1" and first.nbytes == 30000000 and first.streams == 4
    assert first.remote == "127.0.0.1" and first.type == "RETR" and first.code == 226
    assert abs(first.seconds - (0.356070 - 0.255797)) < 1e-6
    assert first.start == parse_log_time("20261121003940.255797")
    # the -logfile form carries a prefix; same record
    prefixed = parse_transfer_log(fixture("server.log"))
    assert [r.file for r in prefixed] == ["/tmp/gt/src", "/tmp/gt/src2/big1", "/tmp/gt/src2/big3"]
    assert prefixed[1] == records[1]


def test_transfer_log_file_names_with_spaces():
    line = ("DATE=20240101000001.5 HOST=dtn1 PROG=globus-gridftp-server NL.EVNT=FTP_INFO "
            "START=20240101000000.5 USER=anonymous FILE=/data/my file X.dat BUFFER=0 BLOCK=262144 "
            "NBYTES=10 VOLUME=/ STREAMS=2 STRIPES=1 DEST=[10.0.0.2] TYPE=STOR CODE=226")
    record = parse_transfer_log_line(line)
    assert record.file == "/data/my file X.dat" and record.seconds == 1.0 and record.type == "STOR"


@given(st.text(max_size=400))
def test_transfer_log_parser_never_crashes(text):
    for record in parse_transfer_log(text):
        assert isinstance(record.nbytes, int) and record.seconds >= 0


def test_malformed_log_lines_are_skipped():
    text = fixture("transfer.log").replace("NBYTES=30000000", "NBYTES=junk", 1)
    assert len(parse_transfer_log(text)) == 4


def test_mlsx_and_cksm():
    entry = parse_mlsx_line("Type=file;Modify=20261121003939;Size=30000000;Perm=r;UNIX.mode=0644; big 1")
    assert (entry.name, entry.type, entry.size) == ("big 1", "file", 30000000)
    mlst = parse_mlsx_line(" Type=file;Size=3;Perm=r; /tmp/x")
    assert mlst.name == "/tmp/x" and mlst.size == 3
    assert parse_mlsx_line("") is None and parse_mlsx_line("garbage") is None
    assert parse_cksm_reply("213 488185646e754af4e517bfb63238eb2f") == "488185646e754af4e517bfb63238eb2f"
    assert parse_cksm_reply("550 no such file") is None


def test_error_blocks_from_globus_url_copy_stderr():
    stderr = ("\nerror: globus_ftp_client: the server responded with an error\n500 500-Command failed. : "
              "globus_l_gfs_file_open failed.\r\n500-globus_xio: Unable to open file /tmp/a b\r\n500 End.\r\n"
              "\nerror: globus_ftp_client: a system call failed (Connection refused)\n")
    blocks = error_blocks(stderr)
    assert len(blocks) == 2 and "/tmp/a b" in blocks[0] and "Connection refused" in blocks[1]
