"""Pre-emption: SIGTERM and SIGINT stop training at the next step boundary, after a checkpoint.

A scheduler pre-empts a job with SIGTERM (then SIGKILL after a grace period); a user presses Ctrl-C.
Either sets a flag that the loop sends along with the next step's results to every rank
(steps.train_step), so all ranks stop after the same step, rank 0 writes a checkpoint of it with every
rank's data position, and the run exits with EXIT_PREEMPTED. A second Ctrl-C stops at once (the
progress since the last checkpoint is lost). horovodrun forwards SIGTERM and SIGINT to its ranks as
SIGTERM and kills them after a grace period (scripts/install_horovod.sh makes that period
HOROVOD_GRACEFUL_TERMINATION_TIME_S, 120 s by default).
"""

from __future__ import annotations

import signal
import sys
import threading

EXIT_PREEMPTED = 75  # sysexits.h EX_TEMPFAIL: run the same command again to continue


class StopSignals:
    """Context manager: while inside, SIGTERM/SIGINT request a stop instead of ending the process."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, announce: bool = True):
        self.received = None  # the name of the first signal received
        self.announce = announce
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # the second Ctrl-C: stop now
            return  # a repeated SIGTERM changes nothing
        self.received = name
        if self.announce:
            print(f"\n{name}: stopping after the current step and writing a checkpoint"
                  f"{' (Ctrl-C again to stop at once, losing the progress since the last checkpoint)' if signum == signal.SIGINT else ''}",
                  file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals go to the main thread only
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
