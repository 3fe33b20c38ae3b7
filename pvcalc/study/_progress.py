"""Progress of a study run: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import time

__all__ = ["Progress"]

#: Plain-lines mode prints at most one progress line per this many seconds.
LINE_INTERVAL_S = 10.0
_BAR_WIDTH = 30


def _duration(seconds):
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Reports done / total, rate and ETA.

    Parameters
    ----------
    mode : {None, "bar", "lines", False}
        None picks "bar" when ``stream`` is a terminal, else "lines"; False is silent.
    stream : file
        Where to write.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("lines", out)
    >>> p.start(4, 0); p.update(4, 0); p.finish()
    >>> out.getvalue().splitlines()[-1].startswith("4/4 tasks")
    True
    """

    def __init__(self, mode, stream):
        if mode not in (None, "bar", "lines", False):
            raise ValueError(f"progress must be None (automatic), 'bar', 'lines' or False, "
                             f"got {mode!r}")
        if mode is None:
            isatty = getattr(stream, "isatty", None)
            mode = "bar" if isatty is not None and isatty() else "lines"
        self.mode, self.stream = mode, stream
        self.total = self.before = self.done = self.failed = 0
        self.t0 = self.last = 0.0
        self._drawn = False

    def start(self, total, before):
        self.total, self.before, self.done = total, before, before
        self.t0 = self.last = time.monotonic()

    def _text(self):
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        run = self.done - self.before
        rate = run / elapsed
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        failed = f" ({self.failed} failed)" if self.failed else ""
        return f"{self.done}/{self.total} tasks{failed}, {rate:.2f} tasks/s, ETA {eta}"

    def update(self, run_done, failed):
        if not self.mode:
            return
        self.done, self.failed = self.before + run_done, failed
        now = time.monotonic()
        if self.mode == "bar":
            filled = int(_BAR_WIDTH * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {self._text()}   ")
            self.stream.flush()
            self._drawn = True
        elif now - self.last >= LINE_INTERVAL_S or self.done == self.total:
            self.last = now
            print(self._text(), file=self.stream, flush=True)

    def line(self, text):
        """A notice on its own line (the bar is redrawn after it)."""
        if not self.mode:
            return
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        print(text, file=self.stream, flush=True)

    def finish(self):
        if self.mode and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
