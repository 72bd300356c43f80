"""Reading a run back: the report and the check of its writes.

    build.py            build_report(events) -> Report (pure): write gaps, stalls, outage pairing
    gaps.py             a probe's write gaps, stall windows, outage pairs (build.py calls it)
    timeline.py         run-wide facts: lab failovers, DNS changes, markers, ops/s series
    model.py            the frozen dataclasses a Report is made of
    coerce.py           record field values with the wrong type become None, never an exception
    render_text.py      `fiswatch report` text and the lines printed when `watch` ends
    render_markdown.py  --format markdown
    render_json.py      --format json
    plot.py             --plot OUT.png (matplotlib, optional)
    verify.py           verify(events, connect): did every acknowledged write survive?
    autoverify.py       the verification run after a lab failover and at the end of a run
    digest.py           one pass over a record: rare events as dicts, writes and ticks as numbers; runs
    writes.py           the writes verify checks, as numbers, looked up one id range at a time
    load.py             streaming a record for both commands (one error line, or what was kept)
    cli.py              `fiswatch report` (registers `verify` too)
    verify_cli.py       `fiswatch verify`: where the record's endpoints are now

Nothing is imported here: importing a submodule costs only what it needs.
"""
