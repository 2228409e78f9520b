"""Tests of the data-root check for paths given to the service (traversal, symlinks, prefix tricks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.service.paths import (
    DATA_ROOTS_VARIABLE,
    allowed_data_roots,
    check_config_paths,
    require_under_data_roots,
)

OUTSIDE = "lies outside the allowed data roots"


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A data root with one acquisition in it, and a folder outside it."""
    root = tmp_path.resolve() / "data"
    (root / "acq").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return root


def test_unset_or_empty_variable_means_no_restriction(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ROOTS_VARIABLE, raising=False)
    assert allowed_data_roots() is None
    monkeypatch.setenv(DATA_ROOTS_VARIABLE, "")
    assert allowed_data_roots() is None
    anywhere = tmp_path / "x" / ".." / "y"
    assert require_under_data_roots(anywhere, None, what="acquisition folder") == tmp_path.resolve() / "y"


def test_roots_come_from_the_variable_resolved_and_deduplicated(monkeypatch, data, tmp_path):
    link = tmp_path / "data-link"
    link.symlink_to(data, target_is_directory=True)
    monkeypatch.setenv(DATA_ROOTS_VARIABLE, os.pathsep.join([str(data), "", f" {tmp_path / 'archive'} ", str(link)]))
    assert allowed_data_roots() == [data, tmp_path.resolve() / "archive"]


def test_a_relative_root_is_rejected(monkeypatch):
    monkeypatch.setenv(DATA_ROOTS_VARIABLE, "data")
    with pytest.raises(IsoviewError, match=f"{DATA_ROOTS_VARIABLE}: data root 'data' is not an absolute path"):
        allowed_data_roots()


def test_paths_under_a_root_are_returned_resolved(data):
    assert require_under_data_roots(data / "acq", [data], what="acquisition folder") == data / "acq"
    assert require_under_data_roots(data, [data], what="acquisition folder") == data
    not_yet_created = data / "acq.fused" / "sub" / ".." / "out"
    assert require_under_data_roots(not_yet_created, [data], what="fused output folder") == data / "acq.fused" / "out"


def test_a_root_given_through_a_symlink_allows_the_real_paths(data, tmp_path):
    link = tmp_path / "data-link"
    link.symlink_to(data, target_is_directory=True)
    assert require_under_data_roots(data / "acq", [link], what="acquisition folder") == data / "acq"
    assert require_under_data_roots(link / "acq", [data], what="acquisition folder") == data / "acq"


def test_dot_dot_traversal_out_of_a_root_is_rejected(data):
    escape = data / ".." / "outside"
    with pytest.raises(IsoviewError) as caught:
        require_under_data_roots(escape, [data], what="acquisition folder")
    message = str(caught.value)
    assert message.startswith(f"{escape}: acquisition folder {OUTSIDE} (resolves to {data.parent / 'outside'}; allowed: {data}")
    assert "\n" not in message


def test_traversal_to_etc_is_rejected():
    with pytest.raises(IsoviewError, match=OUTSIDE):
        require_under_data_roots(Path("/data/../etc"), [Path("/data")], what="acquisition folder")


def test_a_symlink_escaping_a_root_is_rejected(data, tmp_path):
    link = data / "acq" / "escape"
    link.symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(IsoviewError, match=OUTSIDE):
        require_under_data_roots(link, [data], what="acquisition folder")
    with pytest.raises(IsoviewError, match=OUTSIDE):
        require_under_data_roots(link / "SPM00" / "not-yet", [data], what="corrected output folder")


def test_a_symlink_that_stays_inside_a_root_is_allowed(data):
    link = data / "latest"
    link.symlink_to(data / "acq", target_is_directory=True)
    assert require_under_data_roots(link, [data], what="acquisition folder") == data / "acq"


def test_a_sibling_with_the_root_as_name_prefix_is_rejected(data):
    sibling = data.parent / (data.name + "2") / "acq"
    with pytest.raises(IsoviewError, match=f"{OUTSIDE}"):
        require_under_data_roots(sibling, [data], what="acquisition folder")
    with pytest.raises(IsoviewError, match=OUTSIDE):
        require_under_data_roots(Path("/data2/acq"), [Path("/data")], what="acquisition folder")


def test_any_of_several_roots_allows_a_path(data, tmp_path):
    archive = tmp_path.resolve() / "archive"
    assert require_under_data_roots(archive / "acq", [data, archive], what="acquisition folder") == archive / "acq"


def test_a_symlink_loop_is_a_clear_error(data):
    (data / "a").symlink_to(data / "b")
    (data / "b").symlink_to(data / "a")
    with pytest.raises(IsoviewError, match=r"a/x: acquisition folder cannot be resolved"):
        require_under_data_roots(data / "a" / "x", [data], what="acquisition folder")


def test_config_paths_default_outputs_are_checked_too(data, tmp_path):
    config = ProcessingConfig(acquisition=data / "acq")
    check_config_paths(config, [data])  # acq.corrected and acq.fused beside it, inside the root
    check_config_paths(config, None)
    with pytest.raises(IsoviewError, match=f"acq.corrected: corrected output folder {OUTSIDE}"):
        check_config_paths(config, [data / "acq"])  # the defaults lie beside the root, outside it


def test_config_paths_name_the_path_outside(data, tmp_path):
    with pytest.raises(IsoviewError, match=f"fused output folder {OUTSIDE}"):
        check_config_paths(ProcessingConfig(acquisition=data / "acq", fused_dir=tmp_path / "outside" / "f"), [data])
    with pytest.raises(IsoviewError, match=f"acquisition folder {OUTSIDE}"):
        check_config_paths(ProcessingConfig(acquisition=data / ".." / "outside", corrected_dir=data / "c", fused_dir=data / "f"), [data])
