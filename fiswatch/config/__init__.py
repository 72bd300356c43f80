"""What a run is told: values checked once at the edge, endpoints and where they come from.

    checks.py   value checks (seconds, ports, table names), endpoint URLs and passwords;
                `arg_type` turns a check into argparse's one usage line
    sources.py  where a command's endpoints come from: --endpoint, --lab, AWS (--secret, --workshop)
    options.py  the option groups `watch` and `demo` share (endpoints, probes, output)
    reads.py    `--read NAME`: endpoints whose probes read, the lab's read endpoints, the demo's reader
"""
