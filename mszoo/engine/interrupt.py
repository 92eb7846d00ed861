"""Stopping a training run on SIGINT / SIGTERM: finish the current step, save ``last.ckpt``, exit 130 / 143.

The Python handler only runs when the main thread executes Python code. If it is blocked in the data
pipeline (e.g. SIGTERM sent to the whole process group killed the dataset workers) it would never run,
so a watcher thread also hears the signal (``signal.set_wakeup_fd``). The main thread normally saves
after the current step (``exit()``); if it does not take over within ``SIGNAL_GRACE`` seconds, the
watcher saves the state of the last completed step (under the trainer's state lock, so never in the
middle of a step) and ends the process.

SIGTERM (sent by schedulers, ``kill``, or to the whole process group, which also kills the dataset workers)
ends the process right after the checkpoint is written: MindSpore's clean-up of a pipeline whose workers
were killed can block forever while holding the GIL (seen in ``iterator.stop()`` and at interpreter exit),
so no Python-level clean-up runs after the save. As a last resort, a C-level timer (faulthandler) ends
the process after ``EXIT_GRACE`` seconds if the save itself hangs; the previous ``last.ckpt`` is then
intact. SIGINT (Ctrl-C, which the workers ignore) ends ``train.py`` (signals held, below) right after the save
too: MindSpore's clean-up at exit waits up to 5 s for each loader worker still prefetching (its queue put times
out only then), 4-11 s in all. Called from your own code, ``train()`` returns 130 on SIGINT, so an interactive
session is never killed.

``train.py`` calls :func:`hold_stop_signals` first, while the process has one thread: SIGINT/SIGTERM are then
blocked in every thread and process started later (MindSpore's threads, the dataset workers) and one thread
takes them with ``sigwait``. No signal handler runs at all, so none can be replaced: MindSpore installs its own
SIGINT handler around every graph run, which turns SIGINT into a SIGTERM to itself (the run would exit 143,
not 130); and the dataset workers are never killed by a signal sent to the whole process group (the pipeline
keeps running while the stop is saved). Without it (``train()`` called from your own code) the handlers
above are used, and the dataset workers still block both signals (``mszoo.data.dataset.stop_signals_blocked``).
"""
import os
import signal
import sys
import threading
import time

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _SignalWaiter:
    """The thread that takes the blocked SIGINT/SIGTERM with ``sigwait`` and hands them to the listener (the
    running ``SignalStop``); with no listener (before or after training) a signal ends the process with its
    exit code, as the signal's default action would."""

    def __init__(self):
        self.listener = None
        self.thread = threading.Thread(target=self._run, name="signal-waiter", daemon=True)

    def _run(self):
        while True:
            signum = signal.sigwait(EXIT_SIGNAL)
            listener = self.listener
            if listener is None:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_SIGNAL[signum])
            listener(signum)


_waiter = None


def hold_stop_signals():
    """Block SIGINT/SIGTERM here and in every thread and process started later, and take them in one
    ``sigwait`` thread instead of a handler (see the module docstring). Call it first in a program's main
    thread, before MindSpore starts threads; later calls do nothing."""
    global _waiter
    if _waiter is not None or threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_SIGNAL)
    _waiter = _SignalWaiter()
    _waiter.thread.start()


class SignalStop:
    """The stop request of a run and the handlers that set it.

    ``save()`` writes the checkpoint and returns its path; ``describe()`` says where the run stopped (it
    ends the log line ``stopped by SIGTERM: saved PATH <describe()>``); ``state_lock`` is held while the
    training state changes, so the watcher never saves half a step.
    """

    SIGNAL_GRACE = 10.0
    # A second signal within this many seconds of the first is not a user asking to stop at once: MindSpore's
    # dataset signals the main process itself when its workers die (SIGTERM sent to the whole group).
    REPEAT_WINDOW = 3.0
    EXIT_GRACE = 120.0

    def __init__(self, save, describe, state_lock, logger):
        self.save = save
        self.describe = describe
        self.state_lock = state_lock
        self.logger = logger
        self.signum = None  # the signal that asked the run to stop, or None
        self.from_os = False  # a real signal (not ``request`` from code): it may end the process (``exit``)
        self.saved = False
        self.saved_path = None
        self._first_signal_time = None
        self._old_handlers = {}
        self._main_took_over = threading.Event()
        self._watch_stop = threading.Event()
        self._wakeup = None  # (read_fd, write_fd, previous wakeup fd) while installed
        self._watcher = None

    @property
    def requested(self):
        return self.signum is not None

    def request(self, signum):
        """Ask the run to stop after the current step, as a signal would (used by code and tests)."""
        if self.signum is None:
            self.signum = signum

    # ------------------------------------------------------------------------------------ handlers
    def install(self):
        """Handle SIGINT/SIGTERM and start the watcher thread (main thread only; elsewhere nothing)."""
        if _waiter is not None:
            _waiter.listener = self._heard
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in EXIT_SIGNAL:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._wakeup = (read_fd, write_fd, old_fd)
        self._watcher = threading.Thread(target=self._watch, args=(read_fd,), name="signal-watcher", daemon=True)
        self._watcher.start()

    def restore(self):
        """Put back the previous handlers and end the watcher."""
        if _waiter is not None and _waiter.listener == self._heard:
            _waiter.listener = None
            self._watch_stop.set()
            self._main_took_over.set()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers = {}
        if self._wakeup is not None:
            read_fd, write_fd, old_fd = self._wakeup
            signal.set_wakeup_fd(old_fd)
            self._watch_stop.set()
            self._main_took_over.set()
            os.write(write_fd, b"\0")  # wake the watcher so it returns
            self._watcher.join(timeout=5)
            os.close(write_fd)
            os.close(read_fd)
            self._wakeup = None

    def _on_signal(self, signum, frame):
        # Runs in the main thread between two bytecodes, possibly while it holds a logging lock: only set
        # flags here (no logging, no locks). The watcher thread reports the signal.
        now = time.monotonic()
        if self.signum is not None and self._first_signal_time is not None:
            if now - self._first_signal_time > self.REPEAT_WINDOW:
                raise KeyboardInterrupt
            return
        self._first_signal_time = now
        self.from_os = True
        self.request(signum)

    def _heard(self, signum):
        # The signal-waiter thread (hold_stop_signals): the first signal asks for the stop; a repeat after
        # REPEAT_WINDOW ends the process at once.
        now = time.monotonic()
        if self.signum is not None and self._first_signal_time is not None:
            if now - self._first_signal_time > self.REPEAT_WINDOW:
                self.logger.info(f"received {signal.Signals(signum).name} again: stopping at once, without saving")
                self._flush()
                os._exit(EXIT_SIGNAL[self.signum])
            return
        self._first_signal_time = now
        self.from_os = True
        self.request(signum)
        threading.Thread(target=self._report_and_guard, args=(signum,), name="signal-guard", daemon=True).start()

    def _watch(self, read_fd):
        while True:
            try:
                data = os.read(read_fd, 1)
            except OSError:
                return
            if not data or self._watch_stop.is_set():
                return
            signum = data[0]
            if signum not in EXIT_SIGNAL:
                continue
            self.from_os = True
            self.request(signum)
            self._report_and_guard(signum)
            return

    def _report_and_guard(self, signum):
        """Say what happens, then save from this thread if the main thread does not take over in time."""
        self.logger.info(f"received {signal.Signals(signum).name}: finishing the current step, then saving a "
                         "checkpoint (send it again to stop at once)")
        if self._main_took_over.wait(self.SIGNAL_GRACE) or self._watch_stop.is_set():
            return
        self._save_for_stuck_main_thread()

    def _save_for_stuck_main_thread(self):
        # The main thread is stuck (most likely waiting for dead data workers).
        with self.state_lock:
            if not self.saved:
                self.logger.info("the main loop is not responding (data pipeline stopped?); saving the "
                                 "last completed step from the signal watcher")
                code = self.exit()
            else:
                code = EXIT_SIGNAL.get(self.signum, 1)
            self._flush()
            os._exit(code)

    # ---------------------------------------------------------------------------------------- exit
    def exit(self):
        """Save (once) and report the stop; returns the exit code (130 / 143), or ends the process after
        a real SIGTERM, or a real SIGINT in a program that holds the stop signals (see the module docstring)."""
        self._main_took_over.set()
        code = EXIT_SIGNAL.get(self.signum, 1)
        hard_exit = self.from_os and (self.signum == signal.SIGTERM or _waiter is not None)
        if hard_exit:
            import faulthandler

            faulthandler.dump_traceback_later(self.EXIT_GRACE, exit=True)
        with self.state_lock:
            if not self.saved:
                self.saved_path = self.save()
                self.saved = True
        name = signal.Signals(self.signum).name
        self.logger.info(f"stopped by {name}: saved {self.saved_path} {self.describe()}")
        if hard_exit:
            self._flush()
            os._exit(code)
        return code

    def _flush(self):
        for handler in self.logger.handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
