"""The commands a user runs (registered in one place: fiswatch.cli) and how a run ends.

    watch.py          `fiswatch watch`: probes, outputs, and one way every run ends
    demo.py           `fiswatch demo`: the lesson on the local lab in one command
    create_db.py      `fiswatch create-db`: the workshop's table and each endpoint's address
    list_backends.py  `fiswatch backends`: installed backends, versions, default options
    run_stop.py       signals, and ending a run once even with its main thread stuck
    run_end.py        verification, the summary, and what could not be written (exit 3)

`lab`, `report`/`verify`, `experiment` and `fleet` live with what they own: fiswatch.lab.cli,
fiswatch.report.cli, fiswatch.aws.cli and fiswatch.aws.fleet_cli.
"""
