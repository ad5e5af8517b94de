"""TensorBoard's process ends with ``prune-rl board``'s, even when it ignores SIGTERM."""

import subprocess
import sys

from prune_rl.board import stop


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        stop(child, grace=0.5)
        assert child.returncode == -9  # SIGKILL: SIGTERM was ignored
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_child_that_exited_already_is_left_alone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait()
    stop(child, grace=0.5)
    assert child.returncode == 3
