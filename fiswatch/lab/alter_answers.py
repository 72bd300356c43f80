"""The daemon's answers to Aurora's `ALTER SYSTEM` statements, wired per instance proxy.

The statements are parsed and answered in lab/wire/alter_system.py; what they do lives in
lab/crash.py (`ALTER SYSTEM CRASH`) and lab/replica_failure.py (`... READ REPLICA FAILURE`).
This module only joins them, so neither of those needs the other's import.
"""
from typing import Any, Callable, Optional

from fiswatch.lab import layout as L
from fiswatch.lab.crash import sql_crash
from fiswatch.lab.lablog import log_line
from fiswatch.lab.replica_failure import sql_simulate
from fiswatch.lab.wire.alter_system import AlterSystem


def alter_system_for(layout: L.Layout, role_of: Callable[[str], Optional[str]], name: str) -> Any:
    """The ALTER SYSTEM answers on instance `name`'s proxy."""

    def log(text: str) -> None:
        log_line(layout, text)

    return AlterSystem(name, sql_crash(layout.dir, log), sql_simulate(layout, role_of, log))


__all__ = ["alter_system_for"]
