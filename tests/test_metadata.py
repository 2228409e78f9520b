"""Tests of the channel XML reader and writer (spec §1.4)."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoview_core.errors import MetadataError
from isoview_core.metadata import (
    CameraDimensions,
    ChannelMetadata,
    read_channel_xml,
    write_channel_xml,
)

SPEC_EXAMPLE = {
    "data_header": "Example_Larva",
    "specimen_name": "sample",
    "time_point": "0",
    "specimen_XYZT": "X=1130.000_Y=1045.000_Z=-205.000_T=-1.0",
    "camera_index": "2",
    "camera_type": "C11440-22C,C11440-22C",
    "camera_roi": "0_2048_0_2048,0_2048_0_2048",
    "wavelength": "488",
    "exposure_time": "4.8",
    "detection_filter": "BP525/50",
    "dimensions": "2048x2048x543,2048x2048x543",
    "z_step": "2.000",
    "stack_direction": "Z",
    "planes": "0-542,0-542",
    "detection_objective": "SpecialOptics 16x/0.71,SpecialOptics 16x/0.71",
    "camera_orientation": "Normal",
}


def _xml(folder: Path, name: str, **attributes: str) -> Path:
    path = folder / name
    write_channel_xml(path, attributes)
    return path


def _metadata(dimensions: str, cameras: list[int]) -> ChannelMetadata:
    rows = [[int(n) for n in row.split("x")] for row in dimensions.split(",")]
    return ChannelMetadata(
        path=Path("ch0.xml"),
        channel=0,
        dimensions=[CameraDimensions(width=w, height=h, depth=d) for w, h, d in rows],
        cameras=cameras,
        attributes={},
    )


def test_spec_minimal_example(tmp_path: Path) -> None:
    metadata = read_channel_xml(_xml(tmp_path, "ch0.xml", **SPEC_EXAMPLE))

    assert metadata.channel == 0
    assert metadata.cameras == [0, 1]
    assert [d.shape_zyx for d in metadata.dimensions] == [(543, 2048, 2048)] * 2
    assert metadata.magnification == 16
    assert metadata.pixel_pitch_um == 6.5
    assert metadata.lateral_pixel_um == 0.40625
    assert metadata.axial_step_um == 2.0
    assert metadata.voxel_size_um == (2.0, 0.40625, 0.40625)
    assert metadata.scaling == pytest.approx(4.923, abs=1e-3)
    assert metadata.view == 0
    assert metadata.wavelength_nm == 488
    assert metadata.exposure_ms == 4.8
    assert metadata.camera_orientation == "Normal"
    assert metadata.time_point == 0
    assert metadata.specimen_name == "sample"
    assert metadata.stage_position_um == {"X": 1130.0, "Y": 1045.0, "Z": -205.0, "T": -1.0}
    assert metadata.attributes == SPEC_EXAMPLE


def test_written_xml_matches_matlab_reader_expectations(tmp_path: Path) -> None:
    path = _xml(tmp_path, "ch0.xml", z_step="2.0", dimensions="4x8x6")
    lines = path.read_text(encoding="utf-8").splitlines()

    assert lines[0] == '<?xml version="1.0" encoding="utf-8"?>'
    assert lines[1] == '<push_config version="1.0">'
    assert lines[2].strip() == '<info z_step="2.0"/>'
    assert lines[3].strip().startswith('<info dimensions="')
    assert lines[-1] == "</push_config>"


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(string.ascii_letters + "_", min_size=1, max_size=12).map(lambda key: f"note_{key}"),
        st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r"), max_size=20),
        max_size=6,
    )
)
def test_attributes_round_trip(tmp_path_factory: pytest.TempPathFactory, extra: dict[str, str]) -> None:
    attributes = {"dimensions": "4x8x6", "magnification": "16", **extra}
    path = tmp_path_factory.mktemp("xml") / "ch3.xml"
    write_channel_xml(path, attributes)

    assert read_channel_xml(path).attributes == attributes


def test_spec_named_xml_and_lenient_reading(tmp_path: Path) -> None:
    path = tmp_path / "ch01_spec00.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<push_config version="1.0">\n'
        '  <info y_step="3.5" dimensions="10x20x30"/>\n'
        '  <info stack_direction="Y" camera_pixel_pitch_um="6.5"/>\n'
        "</push_config>\n",
        encoding="utf-8",
    )
    metadata = read_channel_xml(path)

    assert metadata.channel == 1
    assert metadata.dimensions == [CameraDimensions(width=10, height=20, depth=30)]
    assert metadata.cameras == [2, 3]
    assert metadata.view == 90
    assert metadata.axial_step_um == 3.5


def test_camera_attribute_wins_over_stack_direction(tmp_path: Path) -> None:
    metadata = read_channel_xml(_xml(tmp_path, "ch0.xml", dimensions="4x8x6", camera="23", stack_direction="Z"))

    assert metadata.cameras == [2, 3]
    assert metadata.view == 0


def test_no_camera_information_gives_empty_cameras(tmp_path: Path) -> None:
    metadata = read_channel_xml(_xml(tmp_path, "ch0.xml", dimensions="4x8x6"))

    assert metadata.cameras == []
    assert metadata.view is None


def test_magnification_from_objective_text(tmp_path: Path) -> None:
    metadata = read_channel_xml(
        _xml(tmp_path, "ch0.xml", dimensions="4x8x6", detection_objective="Zeiss 20X/1.00,Nikon 16x/0.8")
    )

    assert metadata.magnification == 20
    assert metadata.lateral_pixel_um == 6.5 / 20


def test_magnification_attribute_wins_over_objective(tmp_path: Path) -> None:
    metadata = read_channel_xml(
        _xml(tmp_path, "ch0.xml", dimensions="4x8x6", detection_objective="Zeiss 20x/1.00", magnification="16,20")
    )

    assert metadata.magnification == 16


def test_magnification_fallback_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="isoview_core.metadata"):
        metadata = read_channel_xml(_xml(tmp_path, "ch0.xml", dimensions="4x8x6", camera_pixel_pitch_um="6.5"))

    assert metadata.magnification == 16
    assert "ch0.xml" in caplog.text and "16" in caplog.text


def test_axial_step_missing(tmp_path: Path) -> None:
    metadata = read_channel_xml(_xml(tmp_path, "ch0.xml", dimensions="4x8x6"))

    with pytest.raises(MetadataError, match="ch0.xml"):
        _ = metadata.voxel_size_um


def test_dimension_rule_single_row() -> None:
    metadata = _metadata("4x8x6", cameras=[2, 3])

    assert metadata.dimensions_for_camera(3).shape_zyx == (6, 8, 4)


def test_dimension_rule_rows_list_all_cameras() -> None:
    metadata = _metadata("1x1x1,2x2x2,3x3x3,4x4x4", cameras=[2, 3])

    assert metadata.dimensions_for_camera(2).width == 3
    assert metadata.dimensions_for_camera(3).width == 4
    assert _metadata("1x1x1,2x2x2,3x3x3", cameras=[0]).dimensions_for_camera(5).width == 1


def test_dimension_rule_position_in_processed_list() -> None:
    metadata = _metadata("5x5x5,7x7x7", cameras=[2, 3])

    assert metadata.dimensions_for_camera(2).width == 5
    assert metadata.dimensions_for_camera(3).width == 7
    assert metadata.dimensions_for_camera(0, processed_cameras=[1, 0]).width == 7
    with pytest.raises(MetadataError, match="camera 1"):
        metadata.dimensions_for_camera(1)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('<push_config version="1.0">\n  <info dimensions="4x8x6">\n</push_config>\n', "malformed XML (mismatched tag"),
        ('<push_config version="1.0">\n  <info z_step="2"/>\n</push_config>\n', "no 'dimensions' attribute"),
        ('<push_config><info dimensions="4x8"/></push_config>', "not a list of positive WxHxD"),
        ('<push_config><info dimensions="4x8x6" z_step="two"/></push_config>', "z_step='two' is not a number"),
        ('<push_config><info dimensions="4x8x6" specimen_XYZT="X1"/></push_config>', "specimen_XYZT"),
    ],
)
def test_bad_xml_messages_name_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "ch1.xml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(MetadataError) as raised:
        read_channel_xml(path)

    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_missing_xml_message_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"ch7\.xml: channel XML not found"):
        read_channel_xml(tmp_path / "ch7.xml")


def test_non_channel_file_name_rejected(tmp_path: Path) -> None:
    path = _xml(tmp_path, "settings.xml", dimensions="4x8x6")

    with pytest.raises(MetadataError, match="settings.xml"):
        read_channel_xml(path)
