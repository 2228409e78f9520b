"""Tests of the registration entry point (isoview_core.fusion.registration.estimate): input checks."""

import numpy as np
import pytest
from pair_helpers import SCALING
from registration_helpers import OFFSETS, camera_pair

from isoview_core.fusion.registration import estimate_registration


def test_estimate_registration_rejects_bad_input():
    reference, second, avg0 = camera_pair(OFFSETS[3], 2.5)
    with pytest.raises(ValueError, match="transition map"):
        estimate_registration(reference, second, scaling=SCALING)
    with pytest.raises(ValueError, match="equal shape"):
        estimate_registration(reference, second[:, :-1], transition_map=avg0, scaling=SCALING)
    with pytest.raises(ValueError, match="does not match"):
        estimate_registration(reference, second, transition_map=avg0[:-1], scaling=SCALING)
    with pytest.raises(ValueError, match="empty"):
        estimate_registration(reference, second, transition_map=np.zeros_like(avg0), scaling=SCALING)
    with pytest.raises(ValueError, match="exceeds"):
        estimate_registration(reference, second, transition_map=avg0 + 40, scaling=SCALING)
    with pytest.raises(ValueError, match="method"):
        estimate_registration(reference, second, transition_map=avg0, scaling=SCALING, method="phase")
    with pytest.raises(ValueError, match="scaling"):
        estimate_registration(reference, second, transition_map=avg0, scaling=0.0)
