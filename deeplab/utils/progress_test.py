import io

from deeplab.utils.progress import Progress


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_non_tty_prints_periodic_lines_with_rate_and_eta():
    clock = _FakeClock()
    out = io.StringIO()
    bar = Progress(10, "train", stream=out, interval=5.0, clock=clock)
    for _ in range(4):
        clock.now += 1.0
        bar.update()
    # First update prints, the next three are within the interval.
    assert out.getvalue().splitlines() == ["train: 1/10 1.0/s ETA 00:09"]
    clock.now += 5.0
    bar.update()
    assert out.getvalue().splitlines()[-1] == "train: 5/10 0.6/s ETA 00:09"
    bar.close()
    bar.close()
    assert len(out.getvalue().splitlines()) == 3


def test_tty_rewrites_one_line_and_reports_total_time():
    clock = _FakeClock()
    out = _Tty()
    with Progress(2, "val", stream=out, clock=clock) as bar:
        clock.now = 1.0
        bar.update(2)
    text = out.getvalue()
    assert text.startswith("\rval: 2/2 2.0/s in 00:01")
    assert text.endswith("\n") and text.count("\n") == 1


def test_unknown_total():
    clock = _FakeClock()
    out = io.StringIO()
    bar = Progress(None, stream=out, clock=clock)
    clock.now = 2.0
    bar.update(4)
    assert out.getvalue() == "4 2.0/s\n"


def test_a_log_record_clears_the_terminal_bar_and_gets_its_own_line():
    import logging

    clock = _FakeClock()
    out = _Tty()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Progress(3, "train", stream=out, interval=100.0, clock=clock) as bar:
            clock.now = 1.0
            bar.update()
            logging.getLogger("deeplab.test").warning("step 1 loss 0.5")
            clock.now = 2.0
            bar.update()  # within the interval, but the bar was cleared: drawn again
    finally:
        root.removeHandler(handler)
    lines = out.getvalue().split("\n")
    assert lines[0] == "\rtrain: 1/3 1.0/s ETA 00:02\x1b[K\r\x1b[Kstep 1 loss 0.5"
    assert lines[1].startswith("\rtrain: 2/3 1.0/s ETA 00:01\x1b[K")
    assert lines[2:] == [""]  # close: the bar's last state, then a newline
