"""Tests of raw acquisition discovery in the nested and flat layouts (spec §1.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoview_core.acquisition import TimepointFiles, discover_acquisition
from isoview_core.errors import LayoutError
from isoview_core.metadata import write_channel_xml
from isoview_core.naming import raw_stack_name

SHAPE_ZYX = (6, 8, 4)
DIMENSIONS = "4x8x6,4x8x6"
CHANNEL_CAMERAS = {0: (0, 1), 1: (2, 3)}
"""Reference-dataset mapping: CM0/CM1 in CHN00 (Z scan), CM2/CM3 in CHN01 (Y scan)."""
STACK_DIRECTIONS = {0: "Z", 1: "Y"}


def _stack(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.zeros(SHAPE_ZYX, dtype="<u2").tofile(path)


def _channel_xml(path: Path, channel: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_channel_xml(
        path,
        {
            "dimensions": DIMENSIONS,
            "z_step": "2.0",
            "stack_direction": STACK_DIRECTIONS[channel],
            "magnification": "16",
        },
    )


def _nested(root: Path, specimens: tuple[int, ...] = (0,), timepoints: tuple[int, ...] = (0, 1)) -> Path:
    for specimen in specimens:
        for timepoint in timepoints:
            folder = root / f"SPM{specimen:02d}" / f"TM{timepoint:05d}"
            for channel, cameras in CHANNEL_CAMERAS.items():
                _channel_xml(folder / f"ch{channel}.xml", channel)
                for camera in cameras:
                    _stack(folder / "ANG000" / raw_stack_name(specimen, timepoint, camera, channel))
    return root


def _flat(root: Path, specimens: tuple[int, ...] = (0,), timepoints: tuple[int, ...] = (0, 1, 2)) -> Path:
    for specimen in specimens:
        for channel, cameras in CHANNEL_CAMERAS.items():
            _channel_xml(root / f"ch{channel:02d}_spec{specimen:02d}.xml", channel)
            for timepoint in timepoints:
                for camera in cameras:
                    _stack(root / raw_stack_name(specimen, timepoint, camera, channel))
    return root


def _camera_channels(files: TimepointFiles) -> list[tuple[int, int]]:
    return [(stack.camera, stack.channel) for stack in files.stacks]


def test_nested_layout(tmp_path: Path) -> None:
    root = _nested(tmp_path, specimens=(0, 1), timepoints=(3, 4))
    (root / "SPM00" / "Background_2.tif").write_bytes(b"")

    acquisition = discover_acquisition(root)

    assert acquisition.layout == "nested"
    assert acquisition.specimens() == [0, 1]
    assert acquisition.timepoints(1) == [3, 4]
    files = acquisition.timepoint(1, 4)
    assert files.folder == root / "SPM01" / "TM00004"
    assert acquisition.timepoint_folder(1, 4) == files.folder
    assert _camera_channels(files) == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert files.channel_xmls == {0: files.folder / "ch0.xml", 1: files.folder / "ch1.xml"}
    assert files.missing == []
    stack = files.stacks[2]
    assert stack.path == files.folder / "ANG000" / "SPC01_TM00004_ANG000_CM2_CHN01_PH0.stack"
    assert (stack.specimen, stack.timepoint, stack.angle) == (1, 4, 0)
    assert stack.shape_zyx == SHAPE_ZYX
    assert stack.expected_bytes == stack.path.stat().st_size
    assert stack.xml_name == "ch1.xml"
    assert stack.metadata.view == 90
    assert acquisition.background_path(0, 2) == root / "SPM00" / "Background_2.tif"
    assert acquisition.background_path(0, 3) is None


def test_flat_layout(tmp_path: Path) -> None:
    root = _flat(tmp_path, specimens=(0, 1), timepoints=(0, 1, 12))
    (root / "Background_0.tif").write_bytes(b"")

    acquisition = discover_acquisition(root)

    assert acquisition.layout == "flat"
    assert acquisition.specimens() == [0, 1]
    assert acquisition.timepoints(0) == [0, 1, 12]
    files = acquisition.timepoint(1, 12)
    assert files.folder == root
    assert acquisition.timepoint_folder(1, 12) == root
    assert _camera_channels(files) == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert files.channel_xmls == {0: root / "ch00_spec01.xml", 1: root / "ch01_spec01.xml"}
    assert files.missing == []
    assert all(stack.expected_bytes == stack.path.stat().st_size for stack in files.stacks)
    assert acquisition.background_path(0, 0) == root / "Background_0.tif"


def test_flat_layout_shares_parsed_xml_across_timepoints(tmp_path: Path) -> None:
    acquisition = discover_acquisition(_flat(tmp_path))

    first = acquisition.timepoint(0, 0).stacks[0].metadata
    assert acquisition.timepoint(0, 2).stacks[0].metadata is first


def test_flat_layout_accepts_unnumbered_xml(tmp_path: Path) -> None:
    root = _flat(tmp_path)
    for channel in CHANNEL_CAMERAS:
        (root / f"ch{channel:02d}_spec00.xml").rename(root / f"ch{channel}.xml")

    files = discover_acquisition(root).timepoint(0, 1)

    assert files.channel_xmls == {0: root / "ch0.xml", 1: root / "ch1.xml"}


def test_nested_layout_accepts_microscope_xml_names(tmp_path: Path) -> None:
    root = _nested(tmp_path)
    folder = root / "SPM00" / "TM00000"
    for channel in CHANNEL_CAMERAS:
        (folder / f"ch{channel}.xml").rename(folder / f"ch{channel:02d}_spec00.xml")

    files = discover_acquisition(root).timepoint(0, 0)

    assert files.channel_xmls == {0: folder / "ch00_spec00.xml", 1: folder / "ch01_spec00.xml"}
    assert len(files.stacks) == 4


def test_timepoint_digits_are_not_fixed(tmp_path: Path) -> None:
    _stack(tmp_path / "SPC00_TM1234567_ANG000_CM0_CHN00_PH0.stack")
    _channel_xml(tmp_path / "ch0.xml", 0)

    acquisition = discover_acquisition(tmp_path)

    assert acquisition.timepoints(0) == [1234567]


def test_non_isoview_entries_are_ignored(tmp_path: Path) -> None:
    root = _nested(tmp_path, timepoints=(0,))
    for junk in ("notes", "SPM00/analysis", "SPM00/TM00000/ANG000/old", "SPMxx", "SPM00/TMfoo"):
        (root / junk).mkdir()
    junk_files = ("README.txt", "SPM00/settings.xml", "SPM00/TM00000/ANG000/SPC00_CM0.stack", "SPM00/TM00000/x.xml")
    for junk in junk_files:
        (root / junk).write_text("not IsoView")

    acquisition = discover_acquisition(root)

    assert acquisition.specimens() == [0]
    assert acquisition.timepoints(0) == [0]
    files = acquisition.timepoint(0, 0)
    assert len(files.stacks) == 4
    assert sorted(files.channel_xmls) == [0, 1]


def test_entries_outside_the_nested_layout_are_listed_in_name_order(tmp_path: Path) -> None:
    root = _nested(tmp_path, timepoints=(0,))
    for junk in ("notes", ".hidden", "SPMxx", "SPM00/analysis", "SPM00/TM000000", "SPM00/TM00000/ANG000/old"):
        (root / junk).mkdir()
    junk_files = ("README.txt", "SPM00/settings.xml", "SPM00/TM00000/x.xml", "SPM00/TM00000/.DS_Store", "SPM00/TM00000/ANG000/SPC00_CM0.stack")
    for junk in junk_files:
        (root / junk).write_text("not IsoView")
    _stack(root / "SPM00/TM00000/ANG000" / raw_stack_name(0, 1, 0, 0))  # named for timepoint 1

    acquisition = discover_acquisition(root)

    def listed(entries):
        return [(entry.path.relative_to(root).as_posix(), entry.problem) for entry in entries]

    assert listed(acquisition.unexpected()) == [("SPMxx", "unexpected"), ("notes", "unexpected")]  # root files are not listed
    assert listed(acquisition.unexpected(0)) == [
        ("SPM00/TM000000", "duplicate"),
        ("SPM00/analysis", "unexpected"),
        ("SPM00/settings.xml", "unexpected"),
    ]
    files = acquisition.timepoint(0, 0)
    assert len(files.stacks) == 4
    assert listed(files.unexpected) == [
        ("SPM00/TM00000/x.xml", "unexpected"),
        ("SPM00/TM00000/ANG000/SPC00_CM0.stack", "unexpected"),
        (f"SPM00/TM00000/ANG000/{raw_stack_name(0, 1, 0, 0)}", "misnamed"),
        ("SPM00/TM00000/ANG000/old", "unexpected"),
    ]
    assert files.unexpected[0].message == f"{root / 'SPM00/TM00000/x.xml'}: unexpected file (expected channel XMLs and ANG### folders); it is ignored"
    assert "name does not match specimen 0 timepoint 0 of its folder" in files.unexpected[2].message
    assert "another folder with the same number is used" in acquisition.unexpected(0)[0].message


def test_folders_in_a_flat_root_are_listed(tmp_path: Path) -> None:
    root = _flat(tmp_path)
    (root / "old_run").mkdir()
    (root / "notes.txt").write_text("not IsoView")

    acquisition = discover_acquisition(root)

    [entry] = acquisition.unexpected()
    assert (entry.path, entry.problem) == (root / "old_run", "unexpected")
    assert "expected raw stacks, channel XMLs and Background_<k>.tif" in entry.message
    assert acquisition.unexpected(0) == [] and acquisition.timepoint(0, 0).unexpected == []


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "image_000.tif").write_bytes(b"")
    (tmp_path / "SPM00" / "TM00000").mkdir(parents=True)

    with pytest.raises(LayoutError, match="no IsoView acquisition found") as raised:
        discover_acquisition(tmp_path)

    assert str(tmp_path) in str(raised.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        discover_acquisition(tmp_path / "nowhere")


def test_unknown_specimen_or_timepoint(tmp_path: Path) -> None:
    acquisition = discover_acquisition(_nested(tmp_path))

    with pytest.raises(LayoutError, match="no specimen 5"):
        acquisition.timepoint(5, 0)
    with pytest.raises(LayoutError, match="no timepoint 9"):
        acquisition.timepoint(0, 9)


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_missing_stacks_are_reported(tmp_path: Path, layout: str) -> None:
    root = _nested(tmp_path) if layout == "nested" else _flat(tmp_path)
    absent = raw_stack_name(0, 1, 3, 1)
    (root / "SPM00" / "TM00001" / "ANG000" / absent if layout == "nested" else root / absent).unlink()
    acquisition = discover_acquisition(root)

    files = acquisition.timepoint(0, 1)

    assert _camera_channels(files) == [(0, 0), (1, 0), (2, 1)]
    assert len(files.missing) == 1
    assert absent in files.missing[0] and "camera 3" in files.missing[0]
    assert acquisition.timepoint(0, 0).missing == []


def test_missing_camera_keeps_dimension_positions(tmp_path: Path) -> None:
    root = _nested(tmp_path, timepoints=(0,))
    folder = root / "SPM00" / "TM00000"
    write_channel_xml(folder / "ch1.xml", {"dimensions": "4x8x6,4x8x5", "stack_direction": "Y", "z_step": "2"})
    (folder / "ANG000" / raw_stack_name(0, 0, 2, 1)).unlink()

    files = discover_acquisition(root).timepoint(0, 0)

    assert files.stacks[-1].camera == 3
    assert files.stacks[-1].shape_zyx == (5, 8, 4)


def test_cameras_from_file_names_when_xml_names_none(tmp_path: Path) -> None:
    write_channel_xml(tmp_path / "ch0.xml", {"dimensions": "4x8x6", "z_step": "2"})
    for camera in (1, 3):
        _stack(tmp_path / raw_stack_name(0, 0, camera, 0))

    files = discover_acquisition(tmp_path).timepoint(0, 0)

    assert [stack.metadata.cameras for stack in files.stacks] == [[1, 3], [1, 3]]
    assert files.missing == []


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_a_missing_xml_leaves_out_only_its_channel(tmp_path: Path, layout: str) -> None:
    root = _nested(tmp_path) if layout == "nested" else _flat(tmp_path)
    expected = root / "SPM00" / "TM00001" / "ch1.xml" if layout == "nested" else root / "ch01_spec00.xml"
    expected.unlink()

    files = discover_acquisition(root).timepoint(0, 1)

    assert _camera_channels(files) == [(0, 0), (1, 0)]
    assert sorted(files.channel_xmls) == [0] and files.missing == []
    [channel] = files.unreadable
    assert (channel.channel, channel.xml, channel.xml_found, channel.cameras) == (1, expected, False, [2, 3])
    assert [path.name for path in channel.stacks] == [raw_stack_name(0, 1, camera, 1) for camera in (2, 3)]
    assert channel.message.startswith(f"{expected}: channel XML not found") and "CHN01" in channel.message


def test_a_malformed_xml_leaves_out_only_its_channel_and_names_the_file(tmp_path: Path) -> None:
    root = _nested(tmp_path)
    bad = root / "SPM00" / "TM00001" / "ch0.xml"
    bad.write_text('<push_config version="1.0">\n  <info dimensions="4x8x6">\n</push_config>\n')
    acquisition = discover_acquisition(root)

    files = acquisition.timepoint(0, 1)

    assert _camera_channels(files) == [(2, 1), (3, 1)]
    assert files.channel_xmls == {1: files.folder / "ch1.xml"} and files.missing == []
    [channel] = files.unreadable
    assert (channel.channel, channel.xml, channel.xml_found, channel.cameras) == (0, bad, True, [0, 1])
    assert channel.message.startswith(f"{bad}: malformed XML") and "\n" not in channel.message
    assert acquisition.timepoint(0, 0).unreadable == []


def test_refresh_sees_new_timepoints(tmp_path: Path) -> None:
    root = _flat(tmp_path, timepoints=(0,))
    acquisition = discover_acquisition(root)
    _stack(root / raw_stack_name(0, 1, 0, 0))

    assert acquisition.timepoints(0) == [0]
    acquisition.refresh()
    assert acquisition.timepoints(0) == [0, 1]
    assert len(acquisition.timepoint(0, 1).missing) == 3


def test_explicit_layout_accepts_an_acquisition_without_stacks_yet(tmp_path: Path) -> None:
    (tmp_path / "SPM00" / "TM00000").mkdir(parents=True)

    acquisition = discover_acquisition(tmp_path, layout="nested")

    assert acquisition.timepoints(0) == [0]
    assert acquisition.timepoint(0, 0).stacks == []
