"""Run the fleet's curses screen on a fake room of N hosts (for the pty tests).

usage: python tests/fleet_app.py [HOSTS]
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _fleet_fixture import fake_fleet  # noqa: E402
from fiswatch.aws.fleet_screen import run_fleet_screen  # noqa: E402


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    fleet = fake_fleet(time.time(), hosts)
    how = run_fleet_screen(lambda: fleet, threading.Event())
    if how == "lost":
        sys.exit(4)  # nobody to tell
    print("fleet_app: done (%s)" % how)


if __name__ == "__main__":
    main()
