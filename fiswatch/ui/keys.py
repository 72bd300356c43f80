"""Key handling as a pure function: (key, UI state, bindings) -> (new UI state, action).

Keys arrive as strings: a printable character, "\\x03" for Ctrl-C, "\\x1b" for Esc,
or a curses name such as "KEY_RESIZE". Actions are names the screen loop runs:
'quit', 'pause', or the key of an extra binding (e.g. 'f' for "failover aurora").
"""
from dataclasses import dataclass, replace
from typing import Iterable, List, Optional, Tuple, Union

from fiswatch.ui.layout import UiState

CTRL_C = "\x03"
ESC = "\x1b"
QUIT_KEYS = ("q", "Q", CTRL_C)
YES = ("y", "Y")


@dataclass(frozen=True)
class Binding:
    """An extra key: its action is the key itself; `confirm` asks y/n first."""

    key: str
    label: str
    confirm: bool = False


BindingLike = Union[Binding, Tuple[str, str], Tuple[str, str, bool]]


def as_bindings(items: Iterable[BindingLike], confirm_keys: Iterable[str] = ()) -> Tuple[Binding, ...]:
    """Bindings from (key, label) pairs (as View.keys holds them) and the keys needing y/n.

    >>> as_bindings([("f", "failover aurora")], confirm_keys=["f"])
    (Binding(key='f', label='failover aurora', confirm=True),)
    """
    confirm = set(confirm_keys)
    out: List[Binding] = []
    for item in items:
        if isinstance(item, Binding):
            b = item
        elif len(item) >= 3:
            b = Binding(item[0], item[1], bool(item[2]))
        else:
            b = Binding(item[0], item[1])
        if b.key in confirm and not b.confirm:
            b = replace(b, confirm=True)
        out.append(b)
    return tuple(out)


def handle_key(key: str, ui: UiState, bindings: Iterable[BindingLike] = ()) -> Tuple[UiState, Optional[str]]:
    """The UI state after `key`, and the action to run (or None).

    Quit and pause:

    >>> handle_key("q", UiState())[1]
    'quit'
    >>> handle_key("\\x03", UiState())[1]
    'quit'
    >>> ui, action = handle_key("p", UiState())
    >>> ui.paused, action
    (True, 'pause')
    >>> handle_key("p", ui)[0].paused
    False

    Help toggles with ?, Esc closes it:

    >>> handle_key("?", UiState())[0].show_help
    True
    >>> handle_key("\\x1b", UiState(show_help=True))[0].show_help
    False

    An extra binding that needs confirmation asks first, runs on y, is dropped on anything else:

    >>> fail = [Binding("f", "failover aurora", confirm=True)]
    >>> ui, action = handle_key("f", UiState(), fail)
    >>> ui.confirm, ui.message, action
    ('f', 'failover aurora? (y/n)', None)
    >>> ui2, action = handle_key("y", ui, fail)
    >>> ui2.confirm, ui2.message, action
    (None, 'failover aurora...', 'f')
    >>> ui2, action = handle_key("n", ui, fail)
    >>> ui2.confirm, ui2.message, action
    (None, 'cancelled: failover aurora', None)

    Ctrl-C quits even while a question is open; unknown keys do nothing:

    >>> handle_key("\\x03", ui, fail)[1]
    'quit'
    >>> handle_key("z", UiState()) == (UiState(), None)
    True
    >>> handle_key("g", UiState(), [("g", "graph")])[1]
    'g'
    """
    table = {b.key: b for b in as_bindings(bindings)}
    if key == CTRL_C:
        return replace(ui, confirm=None), "quit"
    if ui.confirm is not None:
        pending = table.get(ui.confirm)
        label = pending.label if pending else ui.confirm
        if key in YES:
            return replace(ui, confirm=None, message=label + "..."), ui.confirm
        return replace(ui, confirm=None, message="cancelled: " + label), None
    if key in QUIT_KEYS:
        return ui, "quit"
    if key == "?":
        return replace(ui, show_help=not ui.show_help), None
    if key == ESC:
        return replace(ui, show_help=False, message=""), None
    if key in ("p", "P"):
        return replace(ui, paused=not ui.paused, message=""), "pause"
    binding = table.get(key)
    if binding is not None:
        if binding.confirm:
            return replace(ui, confirm=key, message=binding.label + "? (y/n)"), None
        return replace(ui, message=binding.label + "..."), key
    return ui, None
