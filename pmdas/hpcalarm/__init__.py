"""hpcalarm: the state of the pcp-hpc pmie alarm rules as metrics (hpc.alarm.*).

pmie evaluates the rules and runs their actions; the actions record each alarm's
state in a directory; this agent exports that directory so Grafana can show what
is firing, since when and why, and what cleared."""
