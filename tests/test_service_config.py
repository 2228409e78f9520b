from pathlib import Path

import pytest
import yaml

from isoview_core.errors import IsoviewError
from isoview_core.service.config import (
    ServiceConfig,
    example_config_yaml,
    load_service_config,
)


def test_the_example_config_is_valid_yaml_that_loads_to_the_defaults(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(example_config_yaml("/data/larva"))
    config = load_service_config(path)
    assert config == ServiceConfig(processing={"acquisition": Path("/data/larva")})
    text = path.read_text()
    assert "# Half-width w of the live window" in text and "window: 5" in text  # every field documented with its default


def test_command_line_overrides_replace_processing_fields(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump({"processing": {"acquisition": "/data/a", "temporal": {"window": 3}}, "watch": {"polling": True}}))
    config = load_service_config(path, fused_dir=tmp_path / "fused", timepoints=None)
    assert config.processing.fused_dir == tmp_path / "fused" and config.processing.timepoints is None
    assert config.processing.temporal.window == 3 and config.watch.polling


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("processing: {acquisition: /a, temporal: {window: -1}}", "processing.temporal.window"),
        ("processing: {acquisition: /a}\nwatch: {pollling: true}", "watch.pollling"),
        ("- just a list", "mapping"),
        ("processing: {acquisition: [unclosed", "cannot read"),
    ],
)
def test_a_bad_config_gives_one_line_naming_the_file_and_field(tmp_path, content, message):
    path = tmp_path / "service.yaml"
    path.write_text(content)
    with pytest.raises(IsoviewError, match=message) as error:
        load_service_config(path)
    assert str(path) in str(error.value)
