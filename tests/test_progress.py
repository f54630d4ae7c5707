"""The progress line: live on a terminal, one end line elsewhere."""

import io

import pytest

from dim_keras import progress
from dim_keras.progress import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_eta_is_the_pace_so_far():
    assert progress.eta_seconds(250, 1000, elapsed=5.0) == pytest.approx(15.0)
    assert progress.eta_seconds(1000, 1000, elapsed=5.0) == 0.0
    assert progress.eta_seconds(0, 1000, elapsed=5.0) is None
    assert progress.eta_seconds(10, None, elapsed=5.0) is None


def test_seconds_in_words():
    assert progress.format_seconds(3.2) == "3 s"
    assert progress.format_seconds(0.42) == "0.4 s"
    assert progress.format_seconds(125) == "2 min 05 s"
    assert progress.format_seconds(3840) == "1 h 04 min"


def test_not_a_terminal_writes_one_line_at_the_end():
    stream, clock = io.StringIO(), Clock()
    bar = Progress("Extracting features (test)", 1000, "images",
                   stream=stream, clock=clock)
    for done in (100, 500, 900, 1000):
        clock.now += 1.0
        bar.update(done)
    assert stream.getvalue() == ""
    bar.close()
    assert stream.getvalue() == (
        "Extracting features (test): 1000 images in 4 s\n")


def test_log_false_is_silent_and_log_takes_the_end_line():
    stream = io.StringIO()
    with Progress("quiet", 10, stream=stream, log=False) as bar:
        bar.update(10)
    assert stream.getvalue() == ""
    lines = []
    with Progress("probe", stream=stream, log=lines.append) as bar:
        pass
    assert lines == ["probe: in 0.0 s"] and stream.getvalue() == ""


def test_terminal_line_is_rewritten_in_place_with_an_eta():
    stream, clock = Terminal(), Clock()
    bar = Progress("Extracting features (test)", 1000, "images",
                   stream=stream, clock=clock, interval=0.0)
    clock.now += 5.0
    bar.update(512)
    assert bar.line() == ("Extracting features (test): 512/1000 images, "
                          "ETA 5 s")
    clock.now += 5.0
    bar.update(1000)
    bar.close(summary="done")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "\r" in text and "512/1000 images, ETA 5 s" in text
    assert text.rstrip().endswith("1000 images in 10 s, done")


def test_redraws_are_throttled():
    stream, clock = Terminal(), Clock()
    bar = Progress("work", 100, stream=stream, clock=clock, interval=1.0)
    for done in range(1, 51):
        clock.now += 0.01
        bar.update(done)
    assert stream.getvalue().count("\r") <= 2


def test_negative_total_is_refused():
    with pytest.raises(ValueError, match="Received: total=-1"):
        Progress("x", -1)


def test_keras_callback_counts_batches_and_epochs():
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((10, 2), "float32"), np.zeros((10, 1), "float32")
    batches = Progress("fit", 2 * 5, "steps", stream=io.StringIO())
    model.fit(x, y, batch_size=2, epochs=2, verbose=0,
              callbacks=[progress.keras_callback(batches, offset=5)])
    assert batches.done == 5 + 5  # the last batch of the epoch, offset
    epochs = Progress("fit", 3, "epochs", stream=io.StringIO())
    model.fit(x, y, batch_size=2, epochs=3, verbose=0,
              callbacks=[progress.keras_callback(epochs, per="epoch")])
    assert epochs.done == 3
    with pytest.raises(ValueError, match="Received: per='step'"):
        progress.keras_callback(epochs, per="step")


def test_eta_leaves_out_the_set_up_of_the_first_unit():
    clock = Clock()
    bar = Progress("fit", 100, "steps", stream=io.StringIO(), clock=clock)
    clock.now += 60.0  # the first step traces the function
    bar.update(1)
    assert bar.eta() == pytest.approx(60.0 * 99)
    clock.now += 1.0  # then 10 steps a second
    bar.update(11)
    assert bar.eta() == pytest.approx(8.9)


def test_the_total_can_be_set_once_the_work_knows_it():
    line = Progress("linear probe", stream=io.StringIO(), clock=Clock())
    assert line.line().startswith("linear probe: ")  # no total, no ETA
    line.set_total(30, "epochs")
    line.update(10)
    assert "10/30 epochs" in line.line()
    line.set_total(40)
    assert "10/40 epochs" in line.line()
    with pytest.raises(ValueError, match="Received: total=-2"):
        line.set_total(-2)
