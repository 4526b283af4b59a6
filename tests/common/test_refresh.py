import threading
import time

from pmdas.common.agent import Agent
from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.namespace import AgentTable
from pmdas.common.refresh import Refresher
from pmdas.common.sources import Source, SourceError
from pmdas.common.table import COUNT, INSTANT, U32, Indom, Metric, cluster


def config(**overrides):
    return Config(validate(overrides, COMMON_OPTIONS, "test"), None)


class Toy(Agent):
    name, domain, root = "toy", 499, "hpc.toy"
    indoms = [Indom("thing", 0, "things", "things", lambda s: {k: {"thing": k} for k in s})]
    metrics = cluster(0, [
        Metric("count", U32, INSTANT, COUNT, "h", "l", lambda s: len(s)),
        Metric("value", U32, INSTANT, COUNT, "h", "l", lambda s: s, indom="thing"),
        Metric("broken", U32, INSTANT, COUNT, "h", "l", lambda s: s["missing"]),
    ])

    def __init__(self, cfg, read):
        super().__init__(cfg)
        self.read = read

    def sources(self):
        return [Source("things", self.read, self.config.timeout)]

    def build(self, results):
        return results.value("things", {})


def test_values_instances_and_health():
    published = Refresher(Toy(config(), lambda: {"a": 1, "b": 2})).refresh_once()
    assert published.values["hpc.toy.count"] == 2
    assert published.values["hpc.toy.value"] == {"a": 1, "b": 2}
    assert published.instances["thing"]["a"][1] == {"thing": "a"}
    assert "hpc.toy.broken" not in published.values          # extractor error: value absent
    assert published.values["hpc.toy.agent.extractor_errors"] == 1
    assert published.values["hpc.toy.agent.up"] == 1


def test_failed_source_marks_agent_down_with_reason():
    def broken():
        raise SourceError("/sys/class/toy does not exist")
    refresher = Refresher(Toy(config(), broken))
    published = refresher.refresh_once()
    assert published.values["hpc.toy.agent.up"] == 0
    assert published.values["hpc.toy.agent.last_error"] == "/sys/class/toy does not exist"
    assert published.values["hpc.toy.agent.source.up"] == {"things": 0}
    assert refresher.refresh_once().values["hpc.toy.agent.source.failures"] == {"things": 2}


def test_hanging_source_bounds_the_refresh():
    def hang():
        time.sleep(30)
    started = time.monotonic()
    published = Refresher(Toy(config(timeout=0.3), hang)).refresh_once()
    assert time.monotonic() - started < 2
    assert "timed out" in published.values["hpc.toy.agent.last_error"]


def test_build_error_is_reported_not_raised():
    class Bad(Toy):
        def build(self, results):
            raise KeyError("surprise")
    published = Refresher(Bad(config(), dict)).refresh_once()
    assert published.values["hpc.toy.agent.up"] == 0
    assert "building the snapshot failed" in published.values["hpc.toy.agent.last_error"]
    assert "hpc.toy.count" not in published.values


def test_the_refresher_evaluates_the_agents_one_table():
    """The table the PMDA registers (AgentTable.of) is the one evaluated: same object."""
    agent = Toy(config(), lambda: {"a": 1})
    table = AgentTable.of(agent)
    assert Refresher(agent).table is table
    names = {table.full_name(m) for m in table.metrics}
    assert set(Refresher(agent).refresh_once().values) <= names


def test_start_first_here_refreshes_on_the_calling_thread_then_waits_an_interval():
    """An agent started 'notready' refreshes between its handshake and READY, on its own
    thread; the background thread then starts an interval later, not at once."""
    threads = []

    class Watched(Toy):
        def build(self, results):
            threads.append(threading.current_thread())
            return super().build(results)
    agent = Watched(config(interval=30), lambda: {"a": 1})
    refresher = Refresher(agent)
    refresher.start(first_here=True)
    try:
        assert threads == [threading.current_thread()]
        assert refresher.published.values["hpc.toy.count"] == 1
        time.sleep(0.2)
        assert len(threads) == 1
        agent.request_refresh()     # as after a store: the thread refreshes now
        deadline = time.monotonic() + 10
        while len(threads) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert threads[1].name == "toy-refresh"
    finally:
        refresher.stop()


def test_a_refresh_that_cannot_be_published_is_served_as_down():
    """If the glue cannot take a refresh (a value it cannot encode, say), the agent does not
    go on saying up 1 with stale values: it serves its health, up 0, with the reason."""
    taken = []

    def publish(published):
        if published.snapshot is not None:
            raise UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed")
        taken.append(published)

    published = Refresher(Toy(config(), lambda: {"a": 1}), on_publish=publish).refresh_once()
    assert taken == [published]
    assert published.values["hpc.toy.agent.up"] == 0
    assert "publishing the refresh failed: UnicodeEncodeError" in published.values["hpc.toy.agent.last_error"]
    assert "hpc.toy.count" not in published.values and published.instances["thing"] == {}
