"""The fleet's curses screen: the shared painter helpers of fiswatch.ui.screen, a short loop.

`run_fleet_screen(get_fleet, stop)` paints `fleet_view.render()` of the newest Fleet
(handed over by the fetching thread as one frozen object) twice a second and on every
key; scroll keys page through the hosts; q / Ctrl-C quit; p freezes the display.
It never calls AWS: a slow CloudWatch never freezes the screen. Like the watch
dashboard, it ends ("lost") when its terminal goes away, and does not spin when stdin
is not a terminal.
"""
import threading
import time
from typing import Any, Callable, Dict, Optional

from fiswatch.aws.fleet_model import Fleet
from fiswatch.aws.fleet_view import FleetUi, handle_key, render

PAINT_EVERY = 0.5


def run_fleet_screen(get_fleet: Callable[[], Fleet], stop: threading.Event, color: Optional[bool] = None) -> str:
    """Until q / Ctrl-C ("quit"), `stop` ("stop") or a lost terminal ("lost").

    Raises DashboardUnavailable when curses cannot run here.
    """
    import curses

    from fiswatch.ui import screen

    state: Dict[str, Any] = {"how": "stop", "started": False}

    def loop(stdscr: Any) -> None:
        state["started"] = True
        state["how"] = _loop(curses, stdscr, get_fleet, stop, color)

    try:
        screen._wrapper(curses, loop)
    except KeyboardInterrupt:
        state["how"] = "quit"
    except (curses.error, OSError) as exc:
        if not state["started"]:
            raise screen.DashboardUnavailable("the terminal cannot show the fleet (%s): use --plain" % exc)
        if not screen.terminal_gone():
            raise
        state["how"] = "lost"
    if state["how"] != "lost" and screen.terminal_gone():
        state["how"] = "lost"
    return state["how"]


def _loop(curses: Any, stdscr: Any, get_fleet: Callable[[], Fleet], stop: threading.Event,
          color: Optional[bool]) -> str:
    from fiswatch.ui import screen

    try:
        curses.curs_set(0)
    except curses.error:
        pass
    if hasattr(curses, "set_escdelay"):  # Esc closes the help at once
        curses.set_escdelay(25)
    use_color = (screen.color_wanted() if color is None else color) and curses.has_colors()
    palette = screen.make_palette(curses, use_color)
    stdscr.keypad(True)
    stdscr.timeout(int(PAINT_EVERY * 1000))
    keys_ok = screen._is_tty(0)  # stdin </dev/null: getch() returns at once, forever
    quick_reads = 0
    ui = FleetUi()
    fleet = get_fleet()
    shown_at = time.time()
    while not stop.is_set():
        if not ui.base.paused:
            fleet = get_fleet()
            shown_at = time.time()
        height, width = stdscr.getmaxyx()
        screen.paint(curses, stdscr, render(fleet, width, height, ui, shown_at), palette, True)
        if not keys_ok:
            stop.wait(PAINT_EVERY)
            continue
        asked = time.monotonic()
        key = screen.key_name(curses, stdscr.getch())
        if key is None:
            quick_reads = quick_reads + 1 if time.monotonic() - asked < PAINT_EVERY / 4 else 0
            if quick_reads >= screen.QUICK_EMPTY_READS:  # a hung-up terminal (EIO) or EOF
                if screen.terminal_gone():
                    return "lost"
                stop.wait(PAINT_EVERY)
            continue
        quick_reads = 0
        if key == "KEY_RESIZE":
            if hasattr(curses, "update_lines_cols"):
                curses.update_lines_cols()
            continue
        ui, action = handle_key(key, ui, fleet, height)
        if action == "quit":
            return "quit"
    return "stop"
