"""Fault injection for tests, at the named points of the write path.

- `COSTLAKE_CRASH_AT=<point>` kills the process at that point with exit code 86, without cleanup,
  as a power cut or `kill -9` would leave it.
- `COSTLAKE_SIGNAL_AT=<point>:<INT|TERM>` makes the process send itself that signal at that point,
  so a test can interrupt a real process at an exact step, as Ctrl-C or a scheduler's stop would;
  `<point>:TERM+INT` sends both back to back (a supervisor's stop and a Ctrl-C at once).

The write path calls `crash_point(name)` between its steps. With the variables unset this is two
dictionary lookups.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "COSTLAKE_CRASH_AT"
SIGNAL_ENV = "COSTLAKE_SIGNAL_AT"
EXIT_CODE = 86


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(EXIT_CODE)
    wanted = os.environ.get(SIGNAL_ENV)
    if wanted and wanted.rpartition(":")[0] == name:
        sent = [signal.Signals["SIG" + sig] for sig in wanted.rpartition(":")[2].split("+")]
        # Sent to the main thread, where Python runs the handlers, and held back there until all are
        # sent: both arrive together, not the second after the first's handler. (Sent to the process,
        # each could be taken by another thread, a Py4J one say, whose handlers may run in either
        # order on a busy machine.)
        main = threading.main_thread().ident
        assert main is not None
        signal.pthread_sigmask(signal.SIG_BLOCK, sent)
        try:
            for signum in sent:
                signal.pthread_kill(main, signum)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, sent)
