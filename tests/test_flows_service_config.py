from pathlib import Path

import pytest
import yaml

from flows.service_config import (
    COMMAND_LINE,
    ServiceConfig,
    deep_merge,
    example_config_yaml,
    load_service_config,
    merge_layers,
)
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError


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
    config = load_service_config(path, {"processing": {"fused_dir": tmp_path / "fused", "timepoints": None}})
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


def test_deep_merge_merges_sections_key_by_key_and_replaces_other_values():
    base = {"processing": {"acquisition": "/a", "temporal": {"window": 3, "smoothing_window": 9}}, "watch": {"polling": True}}
    override = {"processing": {"temporal": {"window": 1}, "timepoints": [4, 5]}, "execution": {"max_workers": 4}}
    merged = deep_merge(base, override)
    assert merged == {
        "processing": {"acquisition": "/a", "temporal": {"window": 1, "smoothing_window": 9}, "timepoints": [4, 5]},
        "watch": {"polling": True},
        "execution": {"max_workers": 4},
    }
    assert base["processing"]["temporal"]["window"] == 3  # the inputs stay as they were


def test_a_nested_override_keeps_the_files_other_fields_of_the_section(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "processing": {"acquisition": "/data/a", "temporal": {"window": 3, "smoothing_window": 9}, "output": {"pyramid_levels": 2}},
                "watch": {"polling": True, "settle_s": 5.0},
            }
        )
    )
    config = load_service_config(path, {"processing": {"temporal": {"window": 1}, "output": {"fsync": False}}, "watch": {"idle_timeout_s": 60.0}})
    assert config.processing.temporal.window == 1 and config.processing.temporal.smoothing_window == 9
    assert not config.processing.output.fsync and config.processing.output.pyramid_levels == 2
    assert config.watch.polling and config.watch.settle_s == 5.0 and config.watch.idle_timeout_s == 60.0


def test_flags_override_the_file_and_fields_not_given_keep_the_files_values(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump({"processing": {"acquisition": "/data/a", "overwrite": True, "save_diagnostics": False}}))
    config = load_service_config(path, {"processing": {"acquisition": tmp_path / "b"}, "execution": {"task_runner": "dask"}})
    assert config.processing.acquisition == tmp_path / "b" and config.execution.task_runner == "dask"
    assert config.processing.overwrite and not config.processing.save_diagnostics  # not given on the command line
    assert load_service_config(None, {"processing": {"acquisition": "/data/c"}}).processing.acquisition == Path("/data/c")


def test_an_unknown_key_in_the_file_is_an_error_naming_the_file_and_the_key(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump({"processing": {"acquisition": "/data/a", "temporal": {"windw": 3}}}))
    with pytest.raises(IsoviewError, match="processing.temporal.windw: Extra inputs are not permitted") as error:
        load_service_config(path, {"processing": {"temporal": {"window": 1}}})
    assert str(error.value).startswith(f"{path}: ")


def test_a_bad_value_is_blamed_on_the_layer_that_set_it(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump({"processing": {"acquisition": "/data/a", "temporal": {"window": 3}}}))
    with pytest.raises(IsoviewError, match=f"^{COMMAND_LINE}: processing.temporal.window: "):
        load_service_config(path, {"processing": {"temporal": {"window": -1}}})
    path.write_text(yaml.safe_dump({"watch": {"polling": True}}))
    with pytest.raises(IsoviewError, match="processing: Field required") as error:
        load_service_config(path)
    assert str(error.value).startswith(f"{path}: ")  # set by no layer: the file should have said it


def test_merge_layers_validates_any_model():
    config = merge_layers(ProcessingConfig, [(COMMAND_LINE, {"acquisition": "/data/a", "temporal": {"window": 2}})])
    assert config == ProcessingConfig(acquisition=Path("/data/a"), temporal={"window": 2})
