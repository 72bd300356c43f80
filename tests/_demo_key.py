"""The demo's one-at-a-time lab keys (c: crash, z: patch ...): press one, and again while it runs.

One helper for the tests of each key (test_lab_crash.py, test_lab_patch_seen.py): the second press
must be refused with one line while the first runs to its end.
"""
import threading

from conftest import wait_for


def press_twice(lab_dir, key, action, timeout):
    """Press `key` (the demo's `action`, e.g. "crash aurora") on a quick demo of the lab in `lab_dir`,
    and again once its `start` event is out (asserting the refusal); returns (what the first press
    said, the run's events) after the first ended (`timeout` seconds at most)."""
    from test_lab_demo_faults import Collect

    from fiswatch.commands.demo import DemoHooks

    hooks = DemoHooks(lab_dir, "quick", [], None)
    assert (key, action) in hooks.keys
    run = Collect()
    hooks.start(run)
    first = {}
    thread = threading.Thread(target=lambda: first.setdefault("said", hooks.actions[key]()))
    thread.start()
    try:
        wait_for(lambda: any(e.event == "lab" and e.get("step") == "start" for e in run.events), timeout=60,
                 message="the %s started" % action.split()[0])
        assert hooks.actions[key]() == "%s already running: key ignored (one at a time per cluster)" % action
        thread.join(timeout)
    finally:
        run.stop_event.set()
    return first["said"], run.events
