"""Live time series: appended timepoint by timepoint, readable while it grows, repaired after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr_models.v05.image import Image

from isoview_core.errors import FormatError
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import write_ome_zarr
from isoview_core.results import series as series_module
from isoview_core.results.series import append_timepoint, published_timepoints, record_fingerprint, stale_timepoints

SHAPE = (20, 24, 32)
VOXEL = (2.0, 0.40625, 0.40625)


def _volume(tmp_path: Path, timepoint: int, *, seed: int | None = None, shape=SHAPE, codec: CodecConfig | None = None) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(timepoint if seed is None else seed)
    data = rng.integers(0, 3000, shape, dtype=np.uint16)
    data[:, :4] = 0  # a masked background, as fused volumes have
    path = tmp_path / "volumes" / f"TM{timepoint:06d}_{seed}.ome.zarr"
    write_ome_zarr(path, data, voxel_size_um=VOXEL, codec=codec, overwrite=True)
    return path, data


def _stamp(timepoint: int, interval_s: float = 30.0) -> str:
    return f"2026-12-03T10:{int(timepoint * interval_s) // 60:02d}:{int(timepoint * interval_s) % 60:02d}+00:00"


def _append(series: Path, volume: Path, timepoint: int, fingerprint: str = "a", **options) -> None:
    append_timepoint(series, volume, timepoint=timepoint, fingerprint=fingerprint, timestamp=_stamp(timepoint), attributes={"view": 0}, **options)


def test_appended_timepoints_read_back_exactly_with_time_axis_scale_and_contrast(tmp_path):
    series = tmp_path / "SPM00_VW00_CHN00.ome.zarr"
    volumes = [_volume(tmp_path, t) for t in range(3)]
    for t, (path, _) in enumerate(volumes):
        _append(series, path, t, fingerprint=f"f{t}")
    array = zarr.open_array(series / "0", mode="r")
    assert array.shape == (3, *SHAPE) and array.dtype == np.uint16
    for t, (_, data) in enumerate(volumes):
        np.testing.assert_array_equal(array[t], data)
    ome = json.loads((series / "zarr.json").read_text())["attributes"]["ome"]
    multiscale = ome["multiscales"][0]
    assert [(axis["name"], axis["type"], axis["unit"]) for axis in multiscale["axes"]] == [
        ("t", "time", "second"), ("z", "space", "micrometer"), ("y", "space", "micrometer"), ("x", "space", "micrometer")
    ]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [30.0, *VOXEL]
    window = ome["omero"]["channels"][0]["window"]
    nonzero = volumes[0][1][volumes[0][1] > 0]
    assert 0 < window["start"] < np.percentile(nonzero, 5) and np.percentile(nonzero, 95) < window["end"] <= 3000
    assert published_timepoints(series) == {0: "f0", 1: "f1", 2: "f2"}


def test_series_is_valid_ngff_05_and_ome_zarr_py_reads_its_axes_scale_and_time_unit(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    series = tmp_path / "SPM00_VW00_CHN00.ome.zarr"
    for t in range(2):
        _append(series, _volume(tmp_path, t)[0], t)
    Image.from_zarr(zarr.open_group(series, mode="r"))  # raises on anything the NGFF 0.5 models reject
    nodes = list(Reader(parse_url(str(series)))())
    image = next(node for node in nodes if node.specs and isinstance(node.specs[0], Multiscales))
    assert [(axis["name"], axis.get("unit")) for axis in image.metadata["axes"]] == [
        ("t", "second"), ("z", "micrometer"), ("y", "micrometer"), ("x", "micrometer")
    ]
    scale = next(transform["scale"] for transform in image.metadata["coordinateTransformations"][0] if transform["type"] == "scale")
    assert scale == pytest.approx([30.0, *VOXEL])  # one XML timestamp every 30 s
    assert image.data[0].shape == (2, *SHAPE)


def test_shards_are_linked_not_recompressed_and_copied_when_asked(tmp_path):
    volume, _ = _volume(tmp_path, 0)
    shard = next((volume / "0" / "c").rglob("*"))
    while shard.is_dir():
        shard = next(shard.iterdir())
    linked, copied = tmp_path / "linked.ome.zarr", tmp_path / "copied.ome.zarr"
    _append(linked, volume, 0)
    _append(copied, volume, 0, link=False)
    relative = shard.relative_to(volume / "0" / "c")
    assert os.path.samefile(shard, linked / "0" / "c" / "0" / relative)
    assert not os.path.samefile(shard, copied / "0" / "c" / "0" / relative)
    assert (copied / "0" / "c" / "0" / relative).read_bytes() == shard.read_bytes()


def test_a_timepoint_beyond_the_end_grows_the_series_and_leaves_zeros_between(tmp_path):
    series = tmp_path / "s.ome.zarr"
    _append(series, _volume(tmp_path, 0)[0], 0)
    path, data = _volume(tmp_path, 4)
    _append(series, path, 4)
    array = zarr.open_array(series / "0", mode="r")
    assert array.shape[0] == 5
    assert not np.asarray(array[1:4]).any()
    np.testing.assert_array_equal(array[4], data)
    assert sorted(published_timepoints(series)) == [0, 4]


def test_a_reader_opened_before_an_append_sees_the_new_timepoint_once_reopened(tmp_path):
    series = tmp_path / "s.ome.zarr"
    _append(series, _volume(tmp_path, 0)[0], 0)
    before = zarr.open_array(series / "0", mode="r")
    path, data = _volume(tmp_path, 1)
    _append(series, path, 1)
    assert before.shape[0] == 1  # an open array keeps its metadata...
    np.testing.assert_array_equal(zarr.open_array(series / "0", mode="r")[1], data)  # ...a reopened one grows


def test_a_rerun_timepoint_replaces_its_data_and_drops_shards_it_no_longer_has(tmp_path):
    series = tmp_path / "s.ome.zarr"
    first, _ = _volume(tmp_path, 0, seed=1)
    _append(series, first, 0, fingerprint="old")
    rerun = tmp_path / "volumes" / "empty.ome.zarr"
    empty = np.zeros(SHAPE, np.uint16)
    empty[:2] = 7
    write_ome_zarr(rerun, empty, voxel_size_um=VOXEL)
    (rerun / "0" / "c" / "1" / "0" / "0").unlink()  # a shard of fill values only, as zarr leaves them out
    _append(series, rerun, 0, fingerprint="new")
    np.testing.assert_array_equal(zarr.open_array(series / "0", mode="r")[0], empty)
    assert published_timepoints(series) == {0: "new"}
    assert len(list((series / "0" / "c" / "0").rglob("*.*"))) == 0  # no temporary names left behind


def test_a_kill_during_an_append_leaves_the_timepoint_unpublished_and_the_next_append_repairs_it(tmp_path, monkeypatch):
    series = tmp_path / "s.ome.zarr"
    records = {}
    for t in range(2):
        records[t] = tmp_path / f"record{t}.json"
        records[t].write_text(json.dumps({"timepoint": t}))
    volumes = [_volume(tmp_path, t) for t in range(2)]
    _append(series, volumes[0][0], 0, fingerprint=record_fingerprint(records[0]))
    calls = []
    real_place = series_module._place

    def killed_after_first_shard(source, target, *, link):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after this point runs
        real_place(source, target, link=link)

    monkeypatch.setattr(series_module, "_place", killed_after_first_shard)
    with pytest.raises(KeyboardInterrupt):
        _append(series, volumes[1][0], 1, fingerprint=record_fingerprint(records[1]))
    monkeypatch.setattr(series_module, "_place", real_place)
    assert zarr.open_array(series / "0", mode="r").shape[0] == 1  # the interrupted timepoint never became visible
    assert stale_timepoints(series, records) == [1]
    _append(series, volumes[1][0], 1, fingerprint=record_fingerprint(records[1]))
    assert stale_timepoints(series, records) == []
    np.testing.assert_array_equal(zarr.open_array(series / "0", mode="r")[1], volumes[1][1])


def test_a_volume_of_another_shape_or_codec_is_refused_naming_both(tmp_path):
    series = tmp_path / "s.ome.zarr"
    _append(series, _volume(tmp_path, 0)[0], 0)
    deeper, _ = _volume(tmp_path, 1, shape=(24, 24, 32))
    with pytest.raises(FormatError, match=rf"{deeper.name}.*time series .*s\.ome\.zarr"):
        _append(series, deeper, 1)
    other_codec, _ = _volume(tmp_path, 2, codec=CodecConfig(name="blosc-lz4"))
    with pytest.raises(FormatError, match="codecs differ"):
        _append(series, other_codec, 2)
    assert sorted(published_timepoints(series)) == [0]


APPENDER = """
import sys
from pathlib import Path
from isoview_core.results.series import append_timepoint
series, sets = Path(sys.argv[1]), [sorted(Path(folder).glob("*.ome.zarr")) for folder in sys.argv[2:]]
print("ready", flush=True)
for round_ in range(1000):  # appends, then rewrites with the other set's data, until killed
    for t, volume in enumerate(sets[round_ % 2]):
        append_timepoint(series, volume, timepoint=t, fingerprint=f"{round_ % 2}", link=round_ % 4 < 2)
"""


def test_a_series_sigkilled_while_appending_stays_readable_and_the_next_appends_repair_it(tmp_path):
    sets = [{t: _volume(tmp_path / f"set{k}", t, seed=100 * k + t) for t in range(6)} for k in (0, 1)]
    series = tmp_path / "s.ome.zarr"
    folders = [str(tmp_path / f"set{k}" / "volumes") for k in (0, 1)]
    for kill_after_s in (1.0, 0.6, 1.4, 0.8, 1.2):  # several kills, each at another point of the appends and rewrites
        appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(series), *folders], stdout=subprocess.PIPE, text=True)
        assert appender.stdout.readline().strip() == "ready"
        time.sleep(kill_after_s)
        appender.send_signal(signal.SIGKILL)
        appender.wait()
        published = published_timepoints(series)
        array = zarr.open_array(series / "0", mode="r")
        assert published and max(published) < array.shape[0]
        for t, which in published.items():  # every timepoint the series calls published is whole, from one set
            np.testing.assert_array_equal(array[t], sets[int(which)][t][1], err_msg=f"TM{t} after a kill at {kill_after_s} s")
    records = {}
    for t, (volume, _) in sets[0].items():
        records[t] = tmp_path / f"record{t}.json"
        records[t].write_text(str(volume))
    for t in stale_timepoints(series, records):
        _append(series, sets[0][t][0], t, fingerprint=record_fingerprint(records[t]))
    assert stale_timepoints(series, records) == []
    array = zarr.open_array(series / "0", mode="r")
    for t, (_, data) in sets[0].items():
        np.testing.assert_array_equal(array[t], data)
