"""TensorBoard as a child of ``prune-rl board``, stopped with it.

Ctrl-C in a terminal reaches both processes, but SIGTERM (``kill``, a job scheduler, an IDE's stop button) reaches
``prune-rl`` alone, whose default action ends Python at once and leaves TensorBoard serving. :func:`serve` turns both
signals into :class:`Stopped` and stops the child before it returns. Importing this module stays cheap (the CLI's rule).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """
    ``prune-rl board`` received a stop signal; its TensorBoard is stopped too.

    :param signum: The signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def tensorboard_command(logdir: Path, port: int, host: str) -> list[str]:
    """
    :param logdir: Folder holding run directories.
    :param port: Port to serve on.
    :param host: Address to bind.
    :return: The command that serves TensorBoard on ``logdir`` with this interpreter.
    """
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", host]


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def serve(cmd: Sequence[str], grace: float = 5.0) -> int:
    """
    Run ``cmd`` until it exits, stopping it if this process is asked to stop.

    :param cmd: The child's command.
    :param grace: Seconds the child has to exit after SIGTERM before it is killed.
    :return: The child's exit status.
    :raises Stopped: On SIGINT or SIGTERM, once the child has exited.
    """
    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:  # e.g. SIGINT of a job a script started with &
            continue
        try:
            previous[signum] = signal.signal(signum, _raise_stopped)
        except ValueError:  # not the main thread: signals stay as they are, errors still stop the child
            break
    try:
        child = subprocess.Popen(list(cmd))
        try:
            return child.wait()
        finally:  # a signal (or any error) while it runs: it ends with us
            stop(child, grace)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop(child: subprocess.Popen, grace: float) -> None:
    """
    Terminate ``child``, wait for it, and kill it if it has not exited within ``grace`` seconds.

    :param child: A child process (it may have exited already).
    :param grace: Seconds between SIGTERM and SIGKILL.
    """
    if child.poll() is not None:
        return
    try:
        child.terminate()
        child.wait(grace)
    except (subprocess.TimeoutExpired, Stopped, KeyboardInterrupt):  # it hangs, or a second signal: no more waiting
        child.kill()
        child.wait()
