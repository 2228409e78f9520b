import re

import pytest
from typer.testing import CliRunner

from flows.cli import app
from isoview_core.timepoints import parse_timepoints

runner = CliRunner()


def progress_at_the_end(output: str) -> tuple[int, int]:
    """(done, total) of the last progress bar ``correct N timepoints ━━━━ done/total`` in a command's output."""
    bars = re.findall(r"^correct \d+ timepoints.* (\d+)/(\d+) ", output, flags=re.MULTILINE)
    assert bars, output
    done, total = bars[-1]
    return int(done), int(total)


def test_parse_timepoints():
    assert parse_timepoints("0,1,5-9") == [0, 1, 5, 6, 7, 8, 9]
    assert parse_timepoints(None) is None


def test_simulate_then_correct_then_skip(tmp_path):
    raw = tmp_path / "acq"
    result = runner.invoke(app, ["simulate", str(raw), "--timepoints", "2", "--shape", "24", "96", "80", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (raw / "ground_truth.json").is_file()
    result = runner.invoke(app, ["correct", str(raw), "--timepoints", "1", "--codec", "blosc-lz4:5"])
    assert result.exit_code == 0, result.output
    assert "corrected 4 stacks" in result.output
    assert progress_at_the_end(result.output) == (2 * 4 * 24, 2 * 4 * 24)  # two passes over the 24 planes of 4 stacks
    assert len(list((tmp_path / "acq.corrected" / "SPM00" / "TM000001").glob("*.ome.zarr"))) == 4
    assert not (tmp_path / "acq.corrected" / "SPM00" / "TM000000").exists()
    result = runner.invoke(app, ["correct", str(raw)])
    assert result.exit_code == 0 and "corrected 4 stacks, skipped 4" in result.output


def test_truncated_stack_exits_non_zero_but_finishes_the_rest(acquisition_copy, tmp_path):
    stack = next((acquisition_copy / "SPM00" / "TM00000" / "ANG000").glob("*CM1*.stack"))
    stack.write_bytes(stack.read_bytes()[:-7])
    result = runner.invoke(app, ["correct", str(acquisition_copy), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "corrected 7 stacks" in result.output
    done, total = progress_at_the_end(result.output)
    assert done == total  # the truncated stack streamed nothing: the bar still ends full
    assert stack.name in result.output and "not a whole number" in result.output


def test_unknown_layout_and_bad_options_fail_with_one_line(tmp_path):
    (tmp_path / "notes").mkdir()
    result = runner.invoke(app, ["correct", str(tmp_path / "notes")])
    assert result.exit_code == 2 and "no IsoView acquisition found" in result.output
    result = runner.invoke(app, ["correct", str(tmp_path / "notes"), "--codec", "lzma"])
    assert result.exit_code == 2 and "lzma" in result.output


def test_fuse_after_correct_writes_every_pair_and_reruns_skip(tmp_path):
    raw = tmp_path / "acq"
    assert runner.invoke(app, ["simulate", str(raw), "--timepoints", "3", "--shape", "24", "96", "80"]).exit_code == 0
    assert runner.invoke(app, ["correct", str(raw)]).exit_code == 0
    result = runner.invoke(app, ["fuse", str(raw), "--window", "1", "--no-diagnostics"])
    assert result.exit_code == 0, result.output
    assert "estimated 6 pairs, fused 6" in result.output
    fused = tmp_path / "acq.fused" / "SPM00" / "TM000001"
    assert (fused / "SPM00_TM000001_CM00_CM01_VW00_CHN00.fusion.json").is_file()
    assert (fused / "SPM00_TM000001_CM02_CM03_VW90_CHN01.ome.zarr").is_dir()
    rerun = runner.invoke(app, ["fuse", str(raw), "--window", "1", "--no-diagnostics"])
    assert rerun.exit_code == 0 and "fused 0, skipped 6" in rerun.output


@pytest.mark.parametrize("command", [["correct"], ["fuse", "--no-diagnostics"]])
def test_correct_and_fuse_share_the_main_heap_before_they_read_or_start_a_thread(tmp_path, monkeypatch, command):
    """Before discovery (zarr's event-loop thread), the progress bars' thread and the workers (heap.share_main_heap)."""
    from flows.cli import library
    from isoview_core.pipeline import heap

    raw = tmp_path / "acq"
    assert runner.invoke(app, ["simulate", str(raw), "--timepoints", "1", "--shape", "16", "64", "48"]).exit_code == 0
    if command[0] == "fuse":
        assert runner.invoke(app, ["correct", str(raw)]).exit_code == 0
    calls = []

    def recording(name, function):
        def recorded(*args, **kwargs):
            calls.append(name)
            return function(*args, **kwargs)

        return recorded

    monkeypatch.setattr(heap, "share_main_heap", recording("share_main_heap", heap.share_main_heap))
    for name in ("selected_acquisition", "progress_bars"):
        monkeypatch.setattr(library, name, recording(name, getattr(library, name)))
    result = runner.invoke(app, [command[0], str(raw), *command[1:], "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert calls == ["share_main_heap", "selected_acquisition", "progress_bars"]


def test_fuse_without_correction_reports_each_pair(tmp_path):
    raw = tmp_path / "acq"
    assert runner.invoke(app, ["simulate", str(raw), "--timepoints", "1", "--shape", "16", "64", "48"]).exit_code == 0
    result = runner.invoke(app, ["fuse", str(raw)])
    assert result.exit_code == 1 and result.output.count("corrected stack missing") == 2


def test_isotropic_makes_each_volume_with_its_options_then_skips_and_says_when_nothing_is_fused(tmp_path):
    from isoview_core.isotropic.records import load_isotropic_record
    from isoview_core.synthetic import OrthogonalViewsConfig, write_orthogonal_views

    views = OrthogonalViewsConfig(shape00=(24, 64, 64), shape90=(24, 64, 64), voxel00_um=(2.0, 1.0, 1.0), voxel90_um=(2.0, 1.0, 1.0), n_nuclei=40, n_beads=4, bead_margin_um=6.0, translation_um=(2.0, -1.0, 3.0))
    for t in range(2):
        write_orthogonal_views(tmp_path / "fused", views.model_copy(update={"seed": t}), timepoint=t)
    command = ["isotropic", str(tmp_path / "acq"), "--fused", str(tmp_path / "fused"), "--window", "1", "--voxel", "2.5", "--deconvolve", "1"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "made 2 isotropic volumes" in result.output
    records = sorted((tmp_path / "acq.isotropic").glob("SPM00/TM*/*.isotropic.json"))
    assert [(record.timepoint, record.voxel_um, record.deconvolution_iterations) for record in map(load_isotropic_record, records)] == [(0, 2.5, 1), (1, 2.5, 1)]
    assert "made 0 isotropic volumes, skipped 2 unchanged" in runner.invoke(app, command).output
    empty = runner.invoke(app, ["isotropic", str(tmp_path / "other")])
    assert empty.exit_code == 2 and "no fused views" in empty.output
