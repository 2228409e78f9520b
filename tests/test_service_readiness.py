import os
import time

import pytest

from isoview_core.acquisition import discover_acquisition
from isoview_core.service.readiness import timepoint_readiness


def _readiness(root, *, now=None, settle_s=2.0, next_started=False):
    acquisition = discover_acquisition(root)
    return timepoint_readiness(acquisition, 0, 0, now=now or time.time(), settle_s=settle_s, next_timepoint_started=next_started)


@pytest.fixture()
def settled_copy(acquisition_copy):
    """The copy with every file dated a minute ago, as if written long before."""
    old = time.time() - 60
    for path in acquisition_copy.rglob("*"):
        os.utime(path, (old, old))
    return acquisition_copy


def test_a_timepoint_written_long_ago_is_complete(settled_copy):
    assert _readiness(settled_copy).complete


def test_a_growing_stack_is_not_complete_and_the_reason_gives_its_bytes(settled_copy):
    stack = discover_acquisition(settled_copy).timepoint(0, 0).stacks[1]
    with open(stack.path, "r+b") as handle:
        handle.truncate(stack.expected_bytes // 2)
    readiness = _readiness(settled_copy, next_started=True)
    assert not readiness.complete
    assert readiness.reason == f"{stack.path.name}: {stack.expected_bytes // 2} of {stack.expected_bytes} bytes written"


def test_full_size_stacks_wait_to_settle_unless_the_next_timepoint_started(settled_copy):
    stack = discover_acquisition(settled_copy).timepoint(0, 0).stacks[0]
    os.utime(stack.path)  # just written
    assert not _readiness(settled_copy, settle_s=5).complete
    assert "settling" in _readiness(settled_copy, settle_s=5).reason
    assert _readiness(settled_copy, settle_s=5, next_started=True).complete
    assert _readiness(settled_copy, now=time.time() + 6, settle_s=5).complete


def test_a_camera_missing_from_the_timepoint_is_waited_for(settled_copy):
    stack = discover_acquisition(settled_copy).timepoint(0, 0).stacks[3]
    stack.path.unlink()
    readiness = _readiness(settled_copy, next_started=True)
    assert not readiness.complete and "camera 3" in readiness.reason


def test_stacks_before_their_xml_are_waited_for(settled_copy):
    for xml in (settled_copy / "SPM00" / "TM00000").glob("*.xml"):
        xml.unlink()
    readiness = _readiness(settled_copy, next_started=True)
    assert not readiness.complete and "XML" in readiness.reason


def test_a_malformed_xml_waits_only_to_settle_and_then_does_not_block_its_timepoint(settled_copy):
    xml = settled_copy / "SPM00" / "TM00000" / "ch0.xml"
    xml.write_text(xml.read_text()[:300])  # just written, cut short
    waiting = _readiness(settled_copy, settle_s=5)
    assert not waiting.complete and waiting.reason.startswith(f"{xml}: malformed XML") and "settling" in waiting.reason
    assert _readiness(settled_copy, settle_s=5, next_started=True).complete
    assert _readiness(settled_copy, now=time.time() + 6, settle_s=5).complete
