"""SIGTERM (cluster pre-emption) and SIGINT (Ctrl-C) ask the trainer to save and stop.

The handler only sets a flag; the training loop checks it between optimiser steps, saves a
checkpoint and returns normally, so the process exits 0 and `trainer.resume=auto` continues.
A second Ctrl-C falls back to the default behaviour (immediate KeyboardInterrupt).
"""
from __future__ import annotations

import signal
import threading
from typing import Optional


class StopRequest:
    def __init__(self) -> None:
        self.signal_name: Optional[str] = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def install(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
