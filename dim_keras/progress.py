"""One line of progress with an ETA, for work that takes more than seconds.

On a terminal the line is rewritten in place, for example
``Extracting features (test): 512/1000 images, ETA 3 s``. Elsewhere (a
log file, CI) nothing is written while the work runs, and one line at the
end says what was done and how long it took, so logs stay short.

Example:

>>> with Progress("Extracting features (test)", 1000, "images") as bar:
...     for done in range(0, 1001, 250):
...         bar.update(done)  # doctest: +SKIP
"""

import sys
import time


def format_seconds(seconds):
    """A duration in words: `"3 s"`, `"2 min 05 s"`, `"1 h 04 min"`.

    Args:
        seconds: float, non-negative.

    Returns:
        str.
    """
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds < 1 else f"{seconds:.0f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def eta_seconds(done, total, elapsed):
    """Seconds left at the pace so far, or None when it cannot be told.

    Args:
        done: units finished.
        total: units in all, or None when unknown.
        elapsed: float, seconds since the start.

    Returns:
        float or None (no total, or nothing done yet).
    """
    if total is None or done <= 0:
        return None
    return max(0.0, elapsed / done * (total - done))


def is_terminal(stream):
    """Whether `stream` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or odd stream
        return False


class Progress:
    """A progress line: live on a terminal, one end line elsewhere.

    Args:
        description: str, what is being done (the line's start).
        total: int or None, units in all (None: unknown, no ETA).
        unit: str, the units' name (`"images"`, `"steps"`), or "".
        live: bool or None; None rewrites the line in place when `stream`
            is a terminal.
        stream: where the live line goes (default `sys.stdout`).
        log: callable taking the end line when not live; None writes it
            to `stream`; `False` writes nothing at all.
        clock: callable returning seconds (for tests).
        interval: float, seconds between redraws of the live line.
    """

    def __init__(self, description, total=None, unit="", live=None,
                 stream=None, log=None, clock=time.monotonic, interval=0.2):
        if total is not None and total < 0:
            raise ValueError(
                f"total must be non-negative or None. Received: total={total}"
            )
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stdout
        self.live = is_terminal(self.stream) if live is None else bool(live)
        self.log = log
        self.clock = clock
        self.interval = interval
        self.done = 0
        self.started = clock()
        self._first = None  # (time, done) of the first update with work
        self._drawn_at = None
        self._width = 0
        self._closed = False
        if self.live:
            self._draw()

    @property
    def elapsed(self):
        """Seconds since the start."""
        return self.clock() - self.started

    def eta(self):
        """Seconds left at the pace so far, or None.

        The pace is measured from the first update on, once there are two:
        the first unit often pays for set-up (tracing, compiling), which
        would inflate the ETA.
        """
        if self._first is not None and self.done > self._first[1]:
            since, before = self._first
            return eta_seconds(self.done - before,
                               None if self.total is None
                               else self.total - before,
                               self.clock() - since)
        return eta_seconds(self.done, self.total, self.elapsed)

    def line(self):
        """The live line as it reads now."""
        unit = f" {self.unit}" if self.unit else ""
        if self.total is None:
            count = f"{self.done}{unit}, " if self.done else ""
            return (f"{self.description}: {count}"
                    f"{format_seconds(self.elapsed)}")
        text = f"{self.description}: {self.done}/{self.total}{unit}"
        eta = self.eta()
        return text + (f", ETA {format_seconds(eta)}" if eta is not None
                       else "")

    def update(self, done):
        """Sets the units finished (redrawn at most every `interval`)."""
        self.done = done
        if self._first is None and done > 0:
            self._first = (self.clock(), done)
        if self.live and not self._closed:
            now = self.clock()
            if self._drawn_at is None or now - self._drawn_at >= self.interval:
                self._draw()

    def set_total(self, total, unit=None):
        """Sets the units in all once the work knows them (and their name).

        Args:
            total: int or None.
            unit: str or None (None keeps the unit).
        """
        if total is not None and total < 0:
            raise ValueError(
                f"total must be non-negative or None. Received: total={total}"
            )
        self.total = total
        if unit is not None:
            self.unit = unit

    def advance(self, count=1):
        """Adds `count` units finished."""
        self.update(self.done + count)

    def close(self, summary=None):
        """Ends the line: what was done, in how long, and `summary`.

        Args:
            summary: str or None, appended (e.g. an accuracy).

        Returns:
            The end line.
        """
        if self._closed:
            return None
        self._closed = True
        unit = f" {self.unit}" if self.unit else ""
        count = f"{self.done}{unit} " if (self.total or self.done) else ""
        line = (f"{self.description}: {count}in "
                f"{format_seconds(self.elapsed)}")
        if summary:
            line += f", {summary}"
        if self.live:
            self._write("\r" + line.ljust(self._width) + "\n")
        elif self.log is None:
            self._write(line + "\n")
        elif self.log is not False:
            self.log(line)
        return line

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if error is None:
            self.close()
        elif self.live and not self._closed:
            self._closed = True
            self._write("\n")  # the error's message starts a line of its own
        return False

    def _draw(self):
        text = self.line()
        self._write("\r" + text.ljust(self._width))
        self._width = max(self._width, len(text))
        self._drawn_at = self.clock()

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def keras_callback(progress, per="batch", offset=0):
    """A Keras callback advancing `progress` as `fit` runs.

    Args:
        progress: a `Progress`.
        per: `"batch"` (training batches) or `"epoch"`.
        offset: int, units already done before this `fit` (rounds).

    Returns:
        A `keras.callbacks.Callback`.
    """
    import keras

    if per not in ("batch", "epoch"):
        raise ValueError(
            f"per must be 'batch' or 'epoch'. Received: per={per!r}")

    class ProgressCallback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if per == "batch":
                progress.update(offset + batch + 1)

        def on_epoch_end(self, epoch, logs=None):
            if per == "epoch":
                progress.update(offset + epoch + 1)

    return ProgressCallback()
