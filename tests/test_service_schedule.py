from isoview_core.service.schedule import FusionSchedule
from isoview_core.temporal.config import TemporalConfig


def _schedule(settled, window=1, first=0, static=False):
    schedule = FusionSchedule(TemporalConfig(window=window, static_parameters=static), first)
    for t in settled:
        schedule.settle(t)
    return schedule


def test_a_timepoint_is_ready_once_its_whole_window_is_settled():
    assert _schedule([0, 1]).ready() == []  # the window of 0 is shifted to 0..2
    assert _schedule([0, 1, 2]).ready() == [0, 1]
    assert _schedule([0, 1, 2, 3]).ready() == [0, 1, 2]
    assert _schedule([0, 1, 3]).ready() == []  # 2 missing: no window around it is filled


def test_submitted_timepoints_are_not_ready_again():
    schedule = _schedule([0, 1, 2, 3])
    schedule.submit(schedule.ready())
    assert schedule.ready() == []
    schedule.settle(4)
    assert schedule.ready() == [3]


def test_the_end_of_the_acquisition_fills_the_tail_windows():
    schedule = _schedule(range(10, 16), window=2, first=10)
    assert schedule.ready() == [10, 11, 12, 13]
    schedule.submit(schedule.ready())
    assert schedule.ready(last_timepoint=15) == [14, 15]


def test_static_parameters_wait_for_the_end():
    schedule = _schedule(range(6), static=True)
    assert schedule.ready() == []
    assert schedule.ready(last_timepoint=5) == list(range(6))
