import numpy as np

from isoview_core.numerics.rounding import round_half_away, to_u16


def test_round_half_away_differs_from_numpy_round():
    values = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999])
    assert round_half_away(values).tolist() == [1.0, 2.0, 3.0, -1.0, -3.0, 2.0]
    assert np.round(values).tolist() != round_half_away(values).tolist()


def test_to_u16_rounds_and_saturates():
    assert to_u16(np.array([-3.0, 0.5, 65535.4, 70000.0, 12.5])).tolist() == [0, 1, 65535, 65535, 13]
