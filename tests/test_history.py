import time

from inr_utils.history import FitHistory, Stopwatch


def test_stopwatch_leaves_out_the_paused_time():
    clock = Stopwatch()
    with clock.paused():
        time.sleep(0.3)
    assert clock.elapsed() < 0.2 and clock.excluded >= 0.3


def test_history_records_psnr_only_when_known():
    h = FitHistory()
    h.add(0.5, 10, 2.0, 30.0)
    h.add(1.0, 20, 1.5)
    assert h.as_dict() == {"seconds": [0.5, 1.0], "step": [10, 20], "loss": [2.0, 1.5], "psnr": [30.0, None]}
