"""The fleet's curses screen: the fleet view run in the dashboard's curses shell (fiswatch.ui.shell).

`run_fleet_screen(get_fleet, stop)` paints `fleet_view.render()` of the newest Fleet
(handed over by the fetching thread as one frozen object) twice a second and on every
key; scroll keys page through the hosts; q / Ctrl-C quit; p freezes the display.
It never calls AWS: a slow CloudWatch never freezes the screen. The shell ends it
("lost") when its terminal goes away, and does not spin when stdin is not a terminal.
"""
import threading
import time
from typing import Callable, List, Optional

from fiswatch.aws.fleet_model import Fleet
from fiswatch.aws.fleet_view import FleetUi, handle_key, render
from fiswatch.ui.layout import Line
from fiswatch.ui.shell import run_screen

PAINT_EVERY = 0.5


class FleetScreen:
    """The fleet view as a ScreenApp: the newest Fleet (unless paused) and the scroll keys."""

    ascii_only = True

    def __init__(self, get_fleet: Callable[[], Fleet]) -> None:
        self.get_fleet = get_fleet
        self.ui = FleetUi()
        self.fleet = get_fleet()
        self.shown_at = time.time()

    def frame(self, width: int, height: int) -> List[Line]:
        if not self.ui.base.paused:
            self.fleet = self.get_fleet()
            self.shown_at = time.time()
        return render(self.fleet, width, height, self.ui, self.shown_at)

    def key(self, key: str, height: int) -> bool:
        self.ui, action = handle_key(key, self.ui, self.fleet, height)
        return action == "quit"


def run_fleet_screen(get_fleet: Callable[[], Fleet], stop: threading.Event, color: Optional[bool] = None) -> str:
    """Until q / Ctrl-C ("quit"), `stop` ("stop") or a lost terminal ("lost").

    Raises fiswatch.ui.shell.DashboardUnavailable when curses cannot run here.
    """
    return run_screen(lambda unicode_ok: FleetScreen(get_fleet), stop, "fleet", color=color, poll=PAINT_EVERY)
