"""The curses painter: the only module that touches the terminal.

`run_dashboard()` owns curses for its whole life (its own wrapper restores the terminal
on return, on exceptions and on Ctrl-C), fetches a View from `get_view()` every
`refresh` seconds, paints `layout.render()` of it, and polls keys every 0.1 s at most.
It never calls a driver and never takes a lock: `get_view` must return quickly (the
runner's monitor hands over its latest frozen View).

p: with a 'pause' action (the runner pauses its probes; View.paused says so) the display
keeps updating; without one, p freezes the display on the last frame.

On quit (q, Q, Ctrl-C) it calls `actions['quit']` if given, then returns "quit"; it
returns "stop" as soon as `stop` is set, and "lost" when the terminal went away (an SSM
session or tmux closed under it: reads and writes fail with EIO): then nothing is raised,
the caller ends the run as on q. With stdin not a terminal (`</dev/null`) there are no
keys: the loop sleeps between frames instead of polling (no spinning). Other actions ('pause', extra bindings such as 'f')
run in a daemon thread each, so a slow one (an AWS call) never freezes the screen; an
exception in one becomes a footer message.
"""
import os
import queue
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from fiswatch.model import View
from fiswatch.output.streams import terminal_gone
from fiswatch.ui.keys import as_bindings, handle_key
from fiswatch.ui.layout import Line, UiState, render

POLL_SECONDS = 0.1
QUICK_EMPTY_READS = 5  # getch() returning nothing at once this often in a row: is the terminal gone?


class DashboardUnavailable(RuntimeError):
    """curses cannot run on this terminal (unknown TERM, no tty): use --plain."""


def color_wanted(env: Optional[Mapping[str, str]] = None) -> bool:
    """Colour unless NO_COLOR is set to a non-empty value (https://no-color.org).

    >>> color_wanted({}), color_wanted({"NO_COLOR": "1"}), color_wanted({"NO_COLOR": ""})
    (True, False, True)
    """
    env = os.environ if env is None else env
    return not env.get("NO_COLOR")


def make_palette(curses: Any, use_color: bool) -> Dict[str, int]:
    """Style name -> curses attribute. Monochrome uses reverse/bold/dim/underline only."""
    palette = {
        "title": curses.A_REVERSE,
        "header": curses.A_BOLD,
        "ok": curses.A_NORMAL,
        "stalled": curses.A_REVERSE | curses.A_BOLD,
        "error": curses.A_BOLD,
        "warn": curses.A_UNDERLINE,
        "dim": curses.A_DIM,
        "normal": curses.A_NORMAL,
        "help": curses.A_NORMAL,
    }
    if not use_color:
        return palette
    try:
        curses.start_color()
        background = -1
        try:
            curses.use_default_colors()
        except curses.error:
            background = curses.COLOR_BLACK
        pairs = {"red": curses.COLOR_RED, "green": curses.COLOR_GREEN,
                 "yellow": curses.COLOR_YELLOW, "cyan": curses.COLOR_CYAN}
        attr = {}
        for number, (name, fg) in enumerate(sorted(pairs.items()), start=1):
            curses.init_pair(number, fg, background)
            attr[name] = curses.color_pair(number)
    except curses.error:
        return palette
    palette.update({
        "header": attr["cyan"] | curses.A_BOLD,
        "ok": attr["green"],
        "stalled": attr["red"] | curses.A_REVERSE | curses.A_BOLD,
        "error": attr["red"] | curses.A_BOLD,
        "warn": attr["yellow"] | curses.A_BOLD,
        "help": attr["cyan"],
    })
    return palette


def key_name(curses: Any, ch: int) -> Optional[str]:
    """A getch() result as the string handle_key() expects (None = no key)."""
    if ch is None or ch < 0:
        return None
    if ch == curses.KEY_RESIZE:
        return "KEY_RESIZE"
    if ch < 256:
        return chr(ch)
    try:
        return curses.keyname(ch).decode("ascii", "replace")
    except (ValueError, curses.error):
        return None


def paint(curses: Any, stdscr: Any, lines: Iterable[Line], palette: Mapping[str, int], ascii_only: bool) -> None:
    """Erase, draw every segment with addnstr, then one refresh()."""
    stdscr.erase()
    height, width = stdscr.getmaxyx()
    for y, line in enumerate(lines):
        if y >= height:
            break
        x = 0
        for text, style in line.segments:
            if x >= width:
                break
            text = text[: width - x]
            if ascii_only:
                text = text.encode("ascii", "replace").decode("ascii")
            try:
                stdscr.addnstr(y, x, text, width - x, palette.get(style, 0))
            except curses.error:
                pass  # writing the bottom-right cell moves the cursor off screen: curses complains
            x += len(text)
    # window.refresh() lets other threads run while it writes; curses.doupdate() holds the
    # GIL, so a terminal that stops taking output (flow control, a stalled SSM channel) would
    # freeze every thread: the monitor, the record, the end of the run
    stdscr.refresh()


def _unicode_terminal() -> bool:
    import locale

    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        pass
    return "utf" in (locale.getpreferredencoding(False) or "").lower().replace("-", "")


def run_dashboard(get_view: Callable[[], View], actions: Mapping[str, Callable[[], None]],
                  stop: threading.Event, refresh: float = 0.25, color: Optional[bool] = None,
                  confirm_keys: Iterable[str] = ()) -> str:
    """Paint the dashboard until q / Ctrl-C (then `actions['quit']()` runs) or until `stop` is set.

    `color`: None = automatic (the terminal has colours and NO_COLOR is unset), True/False
    forces it. `confirm_keys`: extra binding keys (from View.keys) that ask y/n first.
    Returns how it ended: "quit", "stop" or "lost" (the terminal went away).
    Raises DashboardUnavailable when curses cannot drive this terminal.
    """
    import curses

    unicode_ok = _unicode_terminal()
    confirm = tuple(confirm_keys)
    state: Dict[str, Any] = {"how": "stop"}

    def loop(stdscr: Any) -> None:
        state["started"] = True
        state["how"] = _loop(curses, stdscr, get_view, actions, stop, refresh, color, confirm, unicode_ok)

    try:
        _wrapper(curses, loop)
    except KeyboardInterrupt:
        state["how"] = "quit"
    except (curses.error, OSError) as exc:
        if not state.get("started"):
            raise DashboardUnavailable("the terminal cannot show the dashboard (%s): use --plain" % exc)
        if not terminal_gone():
            raise
        state["how"] = "lost"
    if state["how"] != "lost" and terminal_gone():  # e.g. SIGHUP as the pty closed
        state["how"] = "lost"
    if state["how"] == "quit":
        _call_quit(actions)
    return state["how"]


def _wrapper(curses: Any, fn: Callable[[Any], None]) -> None:
    """curses.wrapper without its start_color(): with NO_COLOR not even the default pair is set.

    endwin() runs on every way out (return, exception, KeyboardInterrupt), so the terminal
    gets its modes, cursor and main screen back; on a terminal that is gone each restoring
    call fails (ERR) and is skipped, never raised.
    """
    stdscr = curses.initscr()  # raises curses.error for an unknown TERM (setupterm first)
    try:
        curses.noecho()
        curses.cbreak()
        stdscr.keypad(True)
        fn(stdscr)
    finally:
        for restore in (lambda: stdscr.keypad(False), curses.echo, curses.nocbreak, curses.endwin):
            try:
                restore()
            except curses.error:
                pass


def _call_quit(actions: Mapping[str, Callable[[], None]]) -> None:
    quit_action = actions.get("quit")
    if quit_action is not None:
        try:
            quit_action()
        except Exception:  # the runner is shutting down anyway; never a traceback on screen
            pass


def _start_action(name: str, action: Callable[[], None], messages: "queue.SimpleQueue[str]") -> None:
    def target() -> None:
        try:
            said = action()
        except Exception as exc:  # shown in the footer, never raised into the screen loop
            messages.put("%s failed: %s" % (name, exc))
            return
        if isinstance(said, str):  # what the action says when it ends ("" clears the footer's `label...`)
            messages.put(said)

    threading.Thread(target=target, name="fiswatch-action-%s" % name, daemon=True).start()


def _loop(curses: Any, stdscr: Any, get_view: Callable[[], View], actions: Mapping[str, Callable[[], None]],
          stop: threading.Event, refresh: float, color: Optional[bool], confirm_keys: Iterable[str],
          unicode_ok: bool) -> str:
    """The screen loop; "quit" when the user asked to, "stop" when `stop` was set, "lost" without a terminal."""
    try:
        curses.curs_set(0)
    except curses.error:
        pass
    if hasattr(curses, "set_escdelay"):  # Esc closes the help at once, not after 1 s
        curses.set_escdelay(25)
    use_color = (color_wanted() if color is None else color) and curses.has_colors()
    palette = make_palette(curses, use_color)
    stdscr.keypad(True)
    poll = max(0.01, min(POLL_SECONDS, refresh))
    stdscr.timeout(int(poll * 1000))
    keys_ok = _is_tty(0)  # stdin </dev/null: getch() returns at once, forever
    quick_reads = 0
    messages: "queue.SimpleQueue[str]" = queue.SimpleQueue()
    confirm_keys = tuple(confirm_keys)
    # curses encodes text with the window's encoding: in a C/POSIX locale that is ASCII even
    # when Python itself runs in UTF-8 mode, so block characters would break the layout
    encoding = (getattr(stdscr, "encoding", "") or "").lower().replace("-", "").replace("_", "")
    unicode_ok = unicode_ok and "utf8" in encoding
    ui = UiState(unicode=unicode_ok, confirm_keys=confirm_keys)
    view: Optional[View] = None
    frame_now = time.monotonic()
    next_fetch = 0.0
    runner_pauses = "pause" in actions
    while not stop.is_set():
        now = time.monotonic()
        frozen = ui.paused and not runner_pauses
        if view is None or (not frozen and now >= next_fetch):
            try:
                view = get_view()
            except Exception as exc:  # keep the last good frame, say what failed
                ui = replace(ui, message="view failed: %s" % exc)
                if view is None:
                    view = View(ts=time.time(), probes=())
            frame_now = now
            next_fetch = now + refresh
        while not messages.empty():
            ui = replace(ui, message=messages.get())
        height, width = stdscr.getmaxyx()
        shown = replace(ui, paused=False) if runner_pauses else ui
        paint(curses, stdscr, render(view, width, height, shown, frame_now if frozen else now),
              palette, not unicode_ok)
        if not keys_ok:
            stop.wait(refresh)
            continue
        asked = time.monotonic()
        key = key_name(curses, stdscr.getch())
        if key is None:
            quick_reads = quick_reads + 1 if time.monotonic() - asked < poll / 4 else 0
            if quick_reads >= QUICK_EMPTY_READS:  # no wait, no key: a hung-up terminal (EIO) or EOF
                if terminal_gone():
                    return "lost"
                stop.wait(poll)
            continue
        quick_reads = 0
        if key == "KEY_RESIZE":
            if hasattr(curses, "update_lines_cols"):
                curses.update_lines_cols()
            continue
        bindings = as_bindings(view.keys, confirm_keys)
        ui, action = handle_key(key, ui, bindings)
        if action == "quit":
            return "quit"
        if action is None:
            continue
        fn = actions.get(action)
        if fn is not None:
            _start_action(action, fn, messages)
        elif action != "pause":
            messages.put("no action for key %s" % action)
    return "stop"


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
