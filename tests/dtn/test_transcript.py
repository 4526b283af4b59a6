"""The -dbg transcript parser on a real capture: which file started, closed, failed, and why."""
import os

from dtn_transfer.transcript import CLIENT_ERROR, DONE, FAILED, PERF, STARTED, Transcript

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "dbg_cc2_pp.txt")
SRC, DST = "ftp://127.0.0.1:21100/tmp/gt/src/", "ftp://127.0.0.1:21102/tmp/gt/dst/"


def events_of(text: str):
    transcript = Transcript()
    return [e for line in text.split("\n") for e in transcript.feed(line)]


def capture():
    """globus-url-copy -dbg -c -cd -cc 2 -pp -fast: a.bin (3 MB), a missing file, "b c.bin" in sub/."""
    with open(FIXTURE, encoding="latin-1") as f:
        return events_of(f.read())


def test_starts_and_closes_are_named_by_url():
    events = capture()
    started = [e.urls for e in events if e.kind == STARTED]
    assert started == [(SRC + "a.bin", DST + "a.bin"), (SRC + "missing.bin", DST + "missing.bin"),
                       (SRC + "b%20c.bin", DST + "sub/b%20c.bin")], "URLs exactly as in the list file"
    closed_at_dest = [e.urls[0] for e in events if e.kind == DONE and e.urls[0].startswith(DST)]
    assert closed_at_dest == [DST + "a.bin", DST + "sub/b%20c.bin"], "the missing file never closes"


def test_perf_markers_carry_the_bytes_written_so_far():
    perf = [(e.urls[0], e.nbytes) for e in capture() if e.kind == PERF]
    assert (DST + "a.bin", 3_000_000) in perf and (DST + "sub/b%20c.bin", 1000) in perf


def test_a_refused_file_gets_its_own_reason_and_directories_that_exist_are_not_errors():
    events = capture()
    failed = [e for e in events if e.kind == FAILED and "PATH_EXISTS" not in e.text]
    assert {e.urls[0] for e in failed} == {SRC + "missing.bin"}
    assert any(e.text.startswith("500 ") and "No such file or directory" in e.text for e in failed)
    client = [e.text for e in events if e.kind == CLIENT_ERROR]
    assert "error: There was an error with 1 transfer." in client


def test_replies_without_blank_lines_and_multiline_bodies():
    text = ("debug: sending command to ftp://h:1/d/x:\nSITE CLIENTINFO a=b;\n"
            "debug: response from ftp://h:1/d/x:\n250 OK.\n"
            "debug: response from ftp://h:1/d/x:\n112-Perf Marker\n Timestamp:  1.5\n Stripe Index: 0\n"
            " Stripe Bytes Transferred: 4096\n Total Stripe Count: 1\n112 End.\n"
            "debug: response from ftp://h:1/d/x:\n226 Transfer Complete.\n"
            "debug: fault on connection to ftp://h:1/d/y: globus_xio: Connection refused\n")
    kinds = [(e.kind, e.urls, e.nbytes, e.text) for e in events_of(text)]
    assert kinds == [(PERF, ("ftp://h:1/d/x",), 4096, ""), (DONE, ("ftp://h:1/d/x",), 0, ""),
                     (FAILED, ("ftp://h:1/d/y",), 0, "globus_xio: Connection refused")]


def test_garbage_never_raises():
    for text in ("", "\n\n", "debug: response from", "226", "debug: starting to transfer x",
                 "debug: response from u:\n5", "\x00\xff" * 50):
        events_of(text)
