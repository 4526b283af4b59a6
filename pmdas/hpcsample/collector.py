"""Sources and snapshot for the sample agent."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pmdas.common.agent import Agent
from pmdas.common.config import Option
from pmdas.common.sources import Results, Source, SourceError, read_text, run_command, under

from . import metrics as table
from .parsers import parse_key_values, parse_value_file


@dataclass(frozen=True)
class SampleSnapshot:
    values: dict[str, float] = field(default_factory=dict)
    command: dict[str, float] = field(default_factory=dict)


class SampleAgent(Agent):
    name = "hpcsample"
    domain = 415
    root = "hpc.sample"
    options = {
        "directory": Option("/var/lib/pcp-hpc/sample", "Directory of value files (one number "
                            "per file, the file name is the instance).", str),
        "command": Option([], "Command (argv list, no shell) printing 'key value' lines; "
                          "empty for none.", list),
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def sources(self):
        found = [Source("files", self._read_files, self.config.timeout)]
        if self.config.command:
            argv = [str(a) for a in self.config.command]
            found.append(Source("command", lambda: parse_key_values(
                run_command(argv, self.config.timeout + 1)), self.config.timeout))
        return found

    def _read_files(self) -> dict[str, float]:
        directory = under(self.config.root, self.config.directory)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            raise SourceError(f"{directory} does not exist") from None
        values = {}
        for name in names:
            try:
                values[name] = parse_value_file(read_text(os.path.join(directory, name)))
            except (ValueError, SourceError):
                continue  # one bad file leaves the others readable
        return values

    def build(self, results: Results) -> SampleSnapshot:
        return SampleSnapshot(results.value("files", {}), results.value("command", {}))
