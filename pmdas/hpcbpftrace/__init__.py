"""hpcbpftrace: curated and admin-added bpftrace scripts, run and supervised, as hpc.bpftrace.*.

Layers (each module has one job):
  header.py    parse_header(text) -> Header(name, description, requires, exports);
               the header grammar is documented there.  Export(variable, kind, keys, unit, help)
               tells the metric mapping what each map is (counter/delta/instant/histogram/
               string); misdeclared_exports(header, text) catches a cleared counter and a
               delta never cleared.
  output.py    parse_line(line) -> Attached | Variable | Text | LostEvents | HelperError | None
               (bpftrace 0.17 ``-f json``); flatten(Variable) -> value or {instance: value}
               with stable, ordered histogram bucket names ('0', '1', '2-3', '<0', '>=100'),
               keyed ones '{key}|{bucket}'; bucket_bounds(name) sorts them.
               printed_variable(line) names the variable of a map print without decoding
               it: readers keep each variable's latest print and decode it on demand.
  datatable.py DataTable().update(scripts, values) -> {kind: KindTable(names, values, labels)}
               for hpc.bpftrace.data.*; a variable's instances and labels are kept while
               its keys stay the same (only values gathered), rebuilt when keys change.
  diagnose.py  diagnose(stderr, returncode) -> Diagnosis(outcome, reason): unsupported on
               this kernel (no restart) / broken script (no restart) / crashed (restart).
  procstat.py  process_cost(pid) -> ProcessCost(cpu_seconds, bpf_seconds, bpf_events).
  totals.py    Totals(max_keys).add(print) -> running totals of a map the script clears after
               each print (delta), keys beyond max_keys summed into '[other]';
               is_full(print, limit): a map at bpftrace's key limit (events lost).
  process.py   ScriptProcess: one bpftrace child, reader threads, state machine, limits.
  runner.py    Runner(limits, bpftrace=..., env=...):
                 start(name, path, deltas) / stop(name) / stop_all(names) / restart(name) /
                 forget(name)
                 sync(registry) -> {name: problem}   run exactly the enabled scripts
                 tick() / start_supervisor(interval) / shutdown()
                 statuses() -> {name: ScriptStatus}   (state, pid, error, probes, lines,
                     bytes, lines_per_sec, lost_events, cpu_seconds, bpf_seconds,
                     bpf_events, cpu_fraction, restarts, full_map_prints, ...)
                 values(name) / all_values() -> {name: {'@var': Variable}}
               States: starting, running, stopped, failed, unsupported, restarting.
               RunnerError: refused request (e.g. script cap), one sentence.
  registry.py  ScriptRegistry(curated_dir, admin_dir, max_bytes, enabled_by_default):
                 scripts() / get(name) / enabled() -> Script(name, path, origin,
                 enabled, header, error); add(name, text, enable) / remove(name) /
                 enable(name) / disable(name); RegistryError with one sentence.
  control.py   ScriptControl(registry, runner, ...).request(script, fresh, outcome): stores
               record, its own thread stops and starts scripts (never pmcd's thread).

Typical use by the agent (collector.py):
    registry = ScriptRegistry(admin_dir=config.script_dir)
    runner = Runner(Limits(max_scripts=config.max_scripts, ...))
    control = ScriptControl(registry, runner, ...)
    ... each refresh: control.request() (wakes its thread), runner.statuses(),
        table.update(scripts, runner.all_values())
    live change (PCP store): registry.add/enable/disable/remove, then control.request(...)
"""
