"""The fleet's curses screen: the shared painter helpers of fiswatch.ui.screen, a short loop.

`run_fleet_screen(get_fleet, stop)` paints `fleet_view.render()` of the newest Fleet
(handed over by the fetching thread as one frozen object) twice a second and on every
key; scroll keys page through the hosts; q / Ctrl-C quit; p freezes the display.
It never calls AWS: a slow CloudWatch never freezes the screen.
"""
import threading
import time
from typing import Any, Callable, Optional

from fiswatch.aws.fleet_model import Fleet
from fiswatch.aws.fleet_view import FleetUi, handle_key, render

PAINT_EVERY = 0.5


def run_fleet_screen(get_fleet: Callable[[], Fleet], stop: threading.Event, color: Optional[bool] = None) -> None:
    """Until q / Ctrl-C or `stop`. Raises DashboardUnavailable when curses cannot run here."""
    import curses

    from fiswatch.ui import screen

    unicode_ok = screen._unicode_terminal()
    state = {"started": False}

    def loop(stdscr: Any) -> None:
        state["started"] = True
        _loop(curses, stdscr, get_fleet, stop, color, unicode_ok)

    try:
        screen._wrapper(curses, loop)
    except KeyboardInterrupt:
        pass
    except curses.error as exc:
        if not state["started"]:
            raise screen.DashboardUnavailable("the terminal cannot show the fleet (%s): use --plain" % exc)
        raise


def _loop(curses: Any, stdscr: Any, get_fleet: Callable[[], Fleet], stop: threading.Event,
          color: Optional[bool], unicode_ok: bool) -> None:
    from fiswatch.ui import screen

    try:
        curses.curs_set(0)
    except curses.error:
        pass
    use_color = (screen.color_wanted() if color is None else color) and curses.has_colors()
    palette = screen.make_palette(curses, use_color)
    stdscr.keypad(True)
    stdscr.timeout(int(PAINT_EVERY * 1000))
    ui = FleetUi()
    fleet = get_fleet()
    shown_at = time.time()
    while not stop.is_set():
        if not ui.base.paused:
            fleet = get_fleet()
            shown_at = time.time()
        height, width = stdscr.getmaxyx()
        screen.paint(curses, stdscr, render(fleet, width, height, ui, shown_at), palette, True)
        key = screen.key_name(curses, stdscr.getch())
        if key is None:
            continue
        if key == "KEY_RESIZE":
            if hasattr(curses, "update_lines_cols"):
                curses.update_lines_cols()
            continue
        ui, action = handle_key(key, ui, fleet, height)
        if action == "quit":
            return
