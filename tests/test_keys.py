"""Key handling: pure (key, UiState, bindings) -> (UiState, action)."""
import pytest

from fiswatch.ui.keys import CTRL_C, ESC, Binding, as_bindings, handle_key
from fiswatch.ui.layout import UiState

FAILOVER = (Binding("f", "failover aurora", confirm=True),)


@pytest.mark.parametrize("key", ["q", "Q", CTRL_C])
def test_quit_keys(key):
    ui, action = handle_key(key, UiState())
    assert action == "quit"


def test_pause_toggles_and_asks_for_the_pause_action():
    ui, action = handle_key("p", UiState())
    assert (ui.paused, action) == (True, "pause")
    ui, action = handle_key("p", ui)
    assert (ui.paused, action) == (False, "pause")


def test_help_toggles_and_escape_closes():
    ui, action = handle_key("?", UiState())
    assert ui.show_help and action is None
    assert not handle_key("?", ui)[0].show_help
    assert not handle_key(ESC, ui)[0].show_help
    # q still quits from the help screen
    assert handle_key("q", ui)[1] == "quit"


def test_confirmation_flow():
    ui, action = handle_key("f", UiState(), FAILOVER)
    assert action is None and ui.confirm == "f" and "(y/n)" in ui.message
    done, action = handle_key("Y", ui, FAILOVER)
    assert action == "f" and done.confirm is None
    for other in ("n", "q", ESC, "f", "KEY_RESIZE"):
        cancelled, action = handle_key(other, ui, FAILOVER)
        assert action is None and cancelled.confirm is None and cancelled.message.startswith("cancelled")
    # Ctrl-C always quits, even during a question
    assert handle_key(CTRL_C, ui, FAILOVER)[1] == "quit"


def test_binding_without_confirmation_runs_at_once():
    ui, action = handle_key("g", UiState(), [("g", "graph")])
    assert action == "g" and ui.confirm is None


def test_y_without_a_question_does_nothing():
    assert handle_key("y", UiState(), FAILOVER) == (UiState(), None)


def test_unknown_and_resize_keys_change_nothing():
    ui = UiState(paused=True, message="x")
    assert handle_key("z", ui) == (ui, None)
    assert handle_key("KEY_RESIZE", ui) == (ui, None)


def test_as_bindings_marks_confirm_keys():
    got = as_bindings([("f", "failover aurora"), ("r", "reboot rds", False), Binding("x", "x")],
                      confirm_keys=["f", "x"])
    assert [(b.key, b.confirm) for b in got] == [("f", True), ("r", False), ("x", True)]


def test_key_names_from_curses_codes():
    import curses

    from fiswatch.ui.shell import key_name

    assert key_name(curses, -1) is None
    assert key_name(curses, ord("q")) == "q"
    assert key_name(curses, 3) == CTRL_C
    assert key_name(curses, curses.KEY_RESIZE) == "KEY_RESIZE"
