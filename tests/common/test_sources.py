import threading
import time

from pmdas.common.sources import Source, SourceError, SourceRunner, read_text, run_command, under


def test_results_carry_values_and_errors():
    def broken():
        raise SourceError("/x does not exist")

    results = SourceRunner().run([Source("ok", lambda: 42), Source("bad", broken),
                                  Source("bug", lambda: 1 / 0)])
    assert results.value("ok") == 42
    assert not results["bad"].ok and results["bad"].error == "/x does not exist"
    assert not results["bug"].ok and "ZeroDivisionError" in results["bug"].error
    assert results.value("bad", "default") == "default"


def test_hung_source_times_out_and_is_not_restarted_while_hung():
    release = threading.Event()
    calls = []

    def hang():
        calls.append(1)
        release.wait(10)
        return "late"

    runner = SourceRunner()
    started = time.monotonic()
    first = runner.run([Source("hang", hang, timeout=0.2), Source("fine", lambda: 1)])
    assert time.monotonic() - started < 1.0
    assert not first["hang"].ok and "timed out after 0.2 s" in first["hang"].error
    assert first.value("fine") == 1
    second = runner.run([Source("hang", hang, timeout=0.2)])
    assert "still hung" in second["hang"].error
    assert len(calls) == 1          # no pile-up of hung threads
    release.set()
    time.sleep(0.1)
    third = runner.run([Source("hang", hang, timeout=1)])
    assert third.value("hang") == "late" and len(calls) == 2


def test_run_command_errors_are_one_sentence():
    assert run_command(["echo", "hi"], 5) == "hi\n"
    for argv, words in [(["/nonexistent/cmd"], "not found"), (["false"], "failed"),
                        (["sleep", "5"], "timed out")]:
        try:
            run_command(argv, 0.3)
        except SourceError as exc:
            assert words in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{argv} should fail")


def test_read_text_and_under(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys" / "f").write_text("7\n")
    assert read_text(under(str(tmp_path), "/sys/f")) == "7\n"
    assert under("/", "/sys/f") == "/sys/f"
    try:
        read_text(str(tmp_path / "missing"))
    except SourceError as exc:
        assert "does not exist" in str(exc)
