"""The engine: probes write, a monitor watches them, a runner wires both to the outputs.

Data flows one way: endpoint specs (fiswatch.config) -> probes -> monitor -> outputs.

    resolve.py   a name to addresses with dnspython (CNAME chain, TTL, empty answers), errors as values
    retry.py     when a failing probe tries again: the reconnect policy, in one place
    probe.py     one daemon thread per (endpoint, backend): INSERT, COMMIT, SELECT; a frozen
                 Snapshot published after every step
    readround.py a read probe's round (`--read NAME`): SELECT the newest rows, who answered, rows behind
    dnswatch.py  each endpoint's name looked up about once a second; a change wakes its probes
    monitor.py   snapshots -> a View and events; the one place that decides STALLED
    runner.py    builds probes, watchers and the monitor, and feeds every output (sink) its thread
"""
