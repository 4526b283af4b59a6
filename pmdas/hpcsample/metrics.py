"""Metric table of the sample agent."""
from pmdas.common.table import COUNT, DOUBLE, INSTANT, NONE, U32, Indom, Metric, cluster

INDOMS = [
    Indom("file", 0, "value files", "One instance per file in the configured directory.",
          lambda s: {name: {"file": name} for name in s.values}),
    Indom("key", 1, "command keys", "One instance per key the configured command printed.",
          lambda s: {key: {} for key in s.command}),
]

METRICS = cluster(0, [
    Metric("files", U32, INSTANT, COUNT, "number of value files read",
           "Number of files in the sample directory that held a number.",
           lambda s: len(s.values)),
    Metric("file.value", DOUBLE, INSTANT, NONE, "the number in each value file",
           "The number each value file holds, read at the last refresh.",
           lambda s: s.values, indom="file"),
    Metric("command.value", DOUBLE, INSTANT, NONE, "values printed by the sample command",
           "The value of each key the configured command printed at the last refresh; "
           "unavailable while the command fails or hangs.",
           lambda s: s.command, indom="key"),
])
