"""The curses shell: the one terminal loop the dashboard and the fleet view both run in.

`run_screen(open_app, stop, what)` owns curses for its whole life (its own wrapper
restores the terminal on return, on exceptions and on Ctrl-C) and asks a `ScreenApp`
for what to show and what a key does; the app never touches the terminal. The shell
handles what every curses screen must:

- a terminal curses cannot drive (unknown TERM, no tty): DashboardUnavailable, the
  caller falls back to text (`what` names the screen in that one line);
- the terminal going away (an SSM session or tmux closed under it: reads and writes
  fail with EIO, getch() returns at once forever): "lost", nothing raised, the caller
  ends the run as on q;
- stdin not a terminal (`</dev/null`): no keys, the loop sleeps between frames
  instead of polling (no spinning);
- a resize: the next frame is drawn for the new size.

It also holds the painter's helpers (palette, key names, paint) the benchmark times.
"""
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Protocol

from fiswatch.output.streams import terminal_gone
from fiswatch.ui.layout import Line

QUICK_EMPTY_READS = 5  # getch() returning nothing at once this often in a row: is the terminal gone?


class DashboardUnavailable(RuntimeError):
    """curses cannot run on this terminal (unknown TERM, no tty): use --plain."""


class ScreenApp(Protocol):
    """What a screen shows and does; the shell calls it from its one thread."""

    ascii_only: bool  # paint with ASCII only (block characters would break the layout)

    def frame(self, width: int, height: int) -> Iterable[Line]:
        """The lines to paint now (called once per pass of the loop)."""
        ...

    def key(self, key: str, height: int) -> bool:
        """Handle one key (curses key name); True ends the screen ("quit")."""
        ...


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


def is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def unicode_locale() -> bool:
    """Set the locale from the environment (curses needs it before initscr); is it UTF-8?"""
    import locale

    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        pass
    return "utf" in (locale.getpreferredencoding(False) or "").lower().replace("-", "")


def run_screen(open_app: Callable[[bool], ScreenApp], stop: threading.Event, what: str,
               color: Optional[bool] = None, poll: float = 0.1, idle: Optional[float] = None) -> str:
    """Run the app until a key ends it ("quit", also Ctrl-C), `stop` is set ("stop") or the terminal
    is gone ("lost").

    `open_app(unicode_ok)` makes the app once curses runs (`unicode_ok`: the locale and the
    window both take UTF-8). `color`: None = automatic (the terminal has colours and NO_COLOR
    is unset), True/False forces it. `poll`: seconds getch() waits for a key; `idle`: seconds
    between frames without keys (stdin not a terminal), default `poll`.
    Raises DashboardUnavailable ("the terminal cannot show the <what>") when curses cannot
    drive this terminal.
    """
    import curses

    locale_unicode = unicode_locale()
    state: Dict[str, Any] = {"how": "stop", "started": False}

    def session(stdscr: Any) -> None:
        state["started"] = True
        state["how"] = _loop(curses, stdscr, open_app, stop, color, poll, poll if idle is None else idle,
                             locale_unicode)

    try:
        wrapper(curses, session)
    except KeyboardInterrupt:
        state["how"] = "quit"
    except (curses.error, OSError) as exc:
        if not state["started"]:
            raise DashboardUnavailable("the terminal cannot show the %s (%s): use --plain" % (what, exc))
        if not terminal_gone():
            raise
        state["how"] = "lost"
    if state["how"] != "lost" and terminal_gone():  # e.g. SIGHUP as the pty closed
        state["how"] = "lost"
    return state["how"]


def wrapper(curses: Any, fn: Callable[[Any], None]) -> None:
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


def _loop(curses: Any, stdscr: Any, open_app: Callable[[bool], ScreenApp], stop: threading.Event,
          color: Optional[bool], poll: float, idle: float, locale_unicode: bool) -> str:
    """The screen loop; "quit" when the app says so, "stop" when `stop` was set, "lost" without a terminal."""
    try:
        curses.curs_set(0)
    except curses.error:
        pass
    if hasattr(curses, "set_escdelay"):  # Esc closes the help at once, not after 1 s
        curses.set_escdelay(25)
    use_color = (color_wanted() if color is None else color) and curses.has_colors()
    palette = make_palette(curses, use_color)
    stdscr.keypad(True)
    stdscr.timeout(int(poll * 1000))
    keys_ok = is_tty(0)  # stdin </dev/null: getch() returns at once, forever
    quick_reads = 0
    # curses encodes text with the window's encoding: in a C/POSIX locale that is ASCII even
    # when Python itself runs in UTF-8 mode, so block characters would break the layout
    encoding = (getattr(stdscr, "encoding", "") or "").lower().replace("-", "").replace("_", "")
    app = open_app(locale_unicode and "utf8" in encoding)
    while not stop.is_set():
        height, width = stdscr.getmaxyx()
        paint(curses, stdscr, app.frame(width, height), palette, app.ascii_only)
        if not keys_ok:
            stop.wait(idle)
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
        if app.key(key, height):
            return "quit"
    return "stop"
