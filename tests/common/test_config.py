import pytest

from pmdas.common.config import ConfigError, Option, load, positive

OPTIONS = {"limit": Option(10, "how many", int, positive), "names": Option([], "names", list)}


def write(tmp_path, text):
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HPC_PCP_CONFIG_DIR", str(tmp_path))
    config = load("agent", OPTIONS)
    assert config.limit == 10 and config.interval == 10.0 and config.root == "/" and config.path is None


def test_values_override_defaults(tmp_path):
    config = load("agent", OPTIONS, write(tmp_path, "limit: 3\ninterval: 0.5\n"))
    assert (config.limit, config.interval) == (3, 0.5)


@pytest.mark.parametrize("text, words", [
    ("limit: many\n", ["key 'limit'", "whole number", "'many'"]),
    ("limit: -1\n", ["key 'limit'", "greater than 0"]),
    ("limit: true\n", ["key 'limit'", "whole number"]),
    ("colour: red\n", ["key 'colour'", "not a known setting"]),
    ("- a\n- b\n", ["top level must be a mapping"]),
    ("limit: [1,\n", ["not valid YAML", "line"]),
    ("interval: 0\n", ["key 'interval'", "greater than 0"]),
])
def test_broken_files_give_one_sentence_naming_file_key_problem(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load("agent", OPTIONS, path)
    message = str(err.value)
    assert message.startswith(path)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load("agent", OPTIONS, str(tmp_path / "absent.yaml"))
