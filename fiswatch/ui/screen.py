"""The dashboard: `run_dashboard()` runs it in the curses shell (fiswatch.ui.shell).

It fetches a View from `get_view()` every `refresh` seconds, paints `layout.render()` of
it, and polls keys every 0.1 s at most. It never calls a driver and never takes a lock:
`get_view` must return quickly (the runner's monitor hands over its latest frozen View).
The shell handles the terminal: an unusable one (DashboardUnavailable), a lost one
("lost"), stdin not a terminal (no keys, no spinning), resizes.

p: with a 'pause' action (the runner pauses its probes; View.paused says so) the display
keeps updating; without one, p freezes the display on the last frame.

On quit (q, Q, Ctrl-C) it calls `actions['quit']` if given, then returns "quit"; it
returns "stop" as soon as `stop` is set, and "lost" when the terminal went away: then
nothing is raised, the caller ends the run as on q. Other actions ('pause', extra
bindings such as 'f') run in a daemon thread each, so a slow one (an AWS call) never
freezes the screen; an exception in one becomes a footer message.
"""
import queue
import threading
import time
from dataclasses import replace
from typing import Callable, Iterable, List, Mapping, Optional

from fiswatch.model import View
from fiswatch.ui.keys import as_bindings, handle_key
from fiswatch.ui.layout import Line, UiState, render
from fiswatch.ui.shell import run_screen

POLL_SECONDS = 0.1


class Dashboard:
    """The dashboard as a ScreenApp: the newest View, the keys, the footer messages."""

    def __init__(self, get_view: Callable[[], View], actions: Mapping[str, Callable[[], None]], refresh: float,
                 confirm_keys: Iterable[str], unicode_ok: bool) -> None:
        self.get_view = get_view
        self.actions = actions
        self.refresh = refresh
        self.confirm_keys = tuple(confirm_keys)
        self.ascii_only = not unicode_ok
        self.ui = UiState(unicode=unicode_ok, confirm_keys=self.confirm_keys)
        self.view: Optional[View] = None
        self.messages: "queue.SimpleQueue[str]" = queue.SimpleQueue()
        self.runner_pauses = "pause" in actions
        self._frame_now = time.monotonic()
        self._next_fetch = 0.0

    def frame(self, width: int, height: int) -> List[Line]:
        now = time.monotonic()
        frozen = self.ui.paused and not self.runner_pauses
        if self.view is None or (not frozen and now >= self._next_fetch):
            try:
                self.view = self.get_view()
            except Exception as exc:  # noqa: BLE001 - keep the last good frame, say what failed
                self.ui = replace(self.ui, message="view failed: %s" % exc)
                if self.view is None:
                    self.view = View(ts=time.time(), probes=())
            self._frame_now = now
            self._next_fetch = now + self.refresh
        while not self.messages.empty():
            self.ui = replace(self.ui, message=self.messages.get())
        shown = replace(self.ui, paused=False) if self.runner_pauses else self.ui
        return render(self.view, width, height, shown, self._frame_now if frozen else now)

    def key(self, key: str, height: int) -> bool:
        view = self.view if self.view is not None else View(ts=time.time(), probes=())
        bindings = as_bindings(view.keys, self.confirm_keys)
        self.ui, action = handle_key(key, self.ui, bindings)
        if action == "quit":
            return True
        if action is None:
            return False
        fn = self.actions.get(action)
        if fn is not None:
            _start_action(action, fn, self.messages)
        elif action != "pause":
            self.messages.put("no action for key %s" % action)
        return False


def run_dashboard(get_view: Callable[[], View], actions: Mapping[str, Callable[[], None]],
                  stop: threading.Event, refresh: float = 0.25, color: Optional[bool] = None,
                  confirm_keys: Iterable[str] = ()) -> str:
    """Paint the dashboard until q / Ctrl-C (then `actions['quit']()` runs) or until `stop` is set.

    `color`: None = automatic (the terminal has colours and NO_COLOR is unset), True/False
    forces it. `confirm_keys`: extra binding keys (from View.keys) that ask y/n first.
    Returns how it ended: "quit", "stop" or "lost" (the terminal went away).
    Raises fiswatch.ui.shell.DashboardUnavailable when curses cannot drive this terminal.
    """
    confirm = tuple(confirm_keys)
    how = run_screen(lambda unicode_ok: Dashboard(get_view, actions, refresh, confirm, unicode_ok), stop,
                     "dashboard", color=color, poll=max(0.01, min(POLL_SECONDS, refresh)), idle=refresh)
    if how == "quit":
        _call_quit(actions)
    return how


def _call_quit(actions: Mapping[str, Callable[[], None]]) -> None:
    quit_action = actions.get("quit")
    if quit_action is not None:
        try:
            quit_action()
        except Exception:  # noqa: BLE001 - the runner is shutting down anyway; never a traceback on screen
            pass


def _start_action(name: str, action: Callable[[], Optional[str]], messages: "queue.SimpleQueue[str]") -> None:
    def target() -> None:
        try:
            said = action()
        except Exception as exc:  # noqa: BLE001 - shown in the footer, never raised into the screen loop
            messages.put("%s failed: %s" % (name, exc))
            return
        if isinstance(said, str):  # what the action says when it ends ("" clears the footer's `label...`)
            messages.put(said)

    threading.Thread(target=target, name="fiswatch-action-%s" % name, daemon=True).start()
