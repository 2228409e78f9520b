"""Diagnostic PNGs of camera-pair fusion: valid, dark, robust to empty data, safe in threads."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from matplotlib.image import imread

from isoview_core import diagnostics
from isoview_core.diagnostics._style import _contrast_limits, _png_bytes

SHAPE = (12, 40, 32)


def _specimen(seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """uint16 volume: noisy blobs inside an ellipsoid, exactly 0 outside (masked background)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float64)
    centre = [(n - 1) / 2 for n in shape]
    inside = sum(((c - m) / (0.45 * n)) ** 2 for c, m, n in zip((z, y, x), centre, shape)) < 1
    signal = 300 + 900 * np.sin(x / 3) ** 2 * np.cos(y / 4) ** 2 + rng.normal(0, 20, shape)
    return np.where(inside, np.clip(signal, 1, None), 0).astype(np.uint16)


def _transition_map(planes: int) -> np.ndarray:
    transition = np.full(SHAPE[1:], planes // 2, dtype=np.uint16)
    transition[:, :5] = 0
    transition[10:20] += 1
    return transition


def _front_weights(planes: int, transition: int, blending_range: int) -> np.ndarray:
    k = np.arange(planes)
    return np.clip(0.5 - (k - transition + 0.5) / (2 * blending_range), 0, 1)


def _figures(volumes: tuple[np.ndarray, np.ndarray, np.ndarray], dpi: int = diagnostics.DPI) -> dict[str, Callable[[Path], Path]]:
    """Every diagnostic, drawn from three (Z, Y, X) volumes at `dpi`, by name."""
    reference, second, fused = volumes
    planes = reference.shape[0]
    timepoints = list(range(6))
    estimated = {
        "offset_x_px": [7.1, None, 7.4, 7.3, None, 7.2],
        "rotation_deg": [0.1, 0.12, None, 0.09, 0.1, 0.11],
        "intensity_ratio": [None] * 6,
    }
    applied = {"offset_x_px": [7.25] * 6, "rotation_deg": [0.1] * 6, "intensity_ratio": [1.25] * 6, "transition_z": [6.0] * 6}
    return {
        "registration": lambda path: diagnostics.plot_registration(
            path, reference, second[:, :, ::-1], second, offset_x_px=7.3, offset_y_px=-4.6, rotation_deg=0.12, correlation=0.87, method="adaptive_slab", dpi=dpi
        ),
        "intensity": lambda path: diagnostics.plot_intensity_correction(
            path,
            *(diagnostics.histogram_samples(volume) for volume in (reference, second, second * 1.25)),
            intensity_ratio=1.25, background_reference=100.0, background_second=104.0, method="estimated", dpi=dpi
        ),
        "blending": lambda path: diagnostics.plot_blending_weights(
            path, _transition_map(planes), planes=planes, blending_range=2, front_weights_profile=_front_weights(planes, planes // 2, 2), dpi=dpi
        ),
        "fusion": lambda path: diagnostics.plot_fusion_result(
            path, [volume[planes // 2] for volume in volumes], [volume.max(axis=2).T for volume in volumes], plane_index=planes // 2, dpi=dpi
        ),
        "overview": lambda path: _overview(path, fused, dpi),
        "parameters": lambda path: diagnostics.plot_parameters_over_time(path, timepoints, estimated, applied, title="SPM00 CM00/CM01", dpi=dpi),
    }


def _overview(path: Path, volume: np.ndarray, dpi: int = diagnostics.DPI) -> Path:
    """``fused_overview.png`` of a whole volume: the planes it shows picked from it."""
    planes = {z: volume[z] for z in diagnostics.overview_plane_indices(len(volume))}
    return diagnostics.plot_fused_overview(path, planes, depth=len(volume), dpi=dpi)


SPECIMEN = (_specimen(0), _specimen(1), _specimen(2))
ZEROS = (np.zeros(SHAPE, np.uint16),) * 3
NAMES = list(_figures(SPECIMEN))


def _assert_dark_png(path: Path) -> np.ndarray:
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 200 and image.shape[1] > 200
    rgb = image[..., :3]
    assert rgb.std() > 0.01, "the figure is all one colour"
    for corner in (rgb[0, 0], rgb[-1, -1]):
        assert corner.max() < 0.15, f"corner pixel {corner} is not dark"
    return image


@pytest.mark.parametrize("name", NAMES)
def test_each_figure_writes_a_dark_png(name, tmp_path):
    path = tmp_path / "diagnostics" / "TM000000" / "cam0_1" / f"{name}.png"  # missing parents
    assert _figures(SPECIMEN)[name](path) == path
    _assert_dark_png(path)
    assert [entry.name for entry in path.parent.iterdir()] == [path.name], "temporary file left behind"


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_input_draws_without_warnings(name, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN / empty-slice / log-scale warnings
        path = _figures(ZEROS)[name](tmp_path / f"{name}.png")
    image = imread(path)
    assert image[0, 0, :3].max() < 0.15


def test_dpi_sets_the_resolution_and_an_existing_file_is_replaced(tmp_path):
    path = tmp_path / "overview.png"
    _overview(path, SPECIMEN[2])
    full = imread(path).shape
    _overview(path, SPECIMEN[2], dpi=50)
    small = imread(path).shape
    assert small[0] == pytest.approx(full[0] / 3, abs=2) and small[1] == pytest.approx(full[1] / 3, abs=2)


def test_overview_shows_nine_evenly_spaced_planes_and_names_a_missing_one(tmp_path):
    assert diagnostics.overview_plane_indices(40) == [0, 5, 10, 15, 20, 24, 29, 34, 39]
    volume = _specimen(3, (40, 24, 20))
    planes = {z: volume[z] for z in diagnostics.overview_plane_indices(40)}
    del planes[24]
    with pytest.raises(ValueError, match="24"):
        diagnostics.plot_fused_overview(tmp_path / "overview.png", planes, depth=40)


def test_display_plane_averages_blocks_down_to_the_display_size():
    plane = np.arange(2100 * 1030, dtype=np.uint16).reshape(2100, 1030)
    shown = diagnostics.display_plane(plane, max_pixels=1024)  # factor 3: 700 x 343, the ragged edge cropped
    assert shown.shape == (700, 343)
    assert shown[1, 2] == pytest.approx(plane[3:6, 6:9].mean())
    small = plane[:1024, :1000]
    assert diagnostics.display_plane(small, max_pixels=1024) is small


def test_overview_of_a_thin_volume_shows_each_plane_once(tmp_path):
    assert diagnostics.overview_plane_indices(3) == [0, 1, 2]
    _assert_dark_png(_overview(tmp_path / "overview.png", _specimen(4, (3, 40, 32))))


def test_parameters_over_time_handles_gaps_and_many_timepoints(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    estimated = {"offset_y_px": [None if rng.random() < 0.2 else float(v) for v in rng.normal(-4.6, 0.3, n)], "custom_value": [None] * n}
    applied = {"offset_y_px": np.full(n, -4.6).tolist()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = diagnostics.plot_parameters_over_time(tmp_path / "parameters.png", range(n), estimated, applied, title="5000 timepoints")
    _assert_dark_png(path)


def test_parameters_over_time_rejects_inconsistent_series(tmp_path):
    with pytest.raises(ValueError, match="offset_x_px: 2 values for 3 timepoints"):
        diagnostics.plot_parameters_over_time(tmp_path / "p.png", [0, 1, 2], {"offset_x_px": [1.0, None]}, {}, title="t")
    with pytest.raises(ValueError, match="no parameter"):
        diagnostics.plot_parameters_over_time(tmp_path / "p.png", [0, 1, 2], {}, {}, title="t")


def test_shape_errors_are_explained(tmp_path):
    volume = SPECIMEN[0]
    with pytest.raises(ValueError, match="one shape"):
        diagnostics.plot_fusion_result(tmp_path / "f.png", [volume[0], volume[0, :-1], volume[0]], [volume[:, 0]] * 3, plane_index=0)
    with pytest.raises(ValueError, match="2-D"):
        diagnostics.plot_blending_weights(tmp_path / "b.png", volume, planes=12, blending_range=2)
    with pytest.raises(ValueError, match="plane or a"):
        diagnostics.plot_registration(
            tmp_path / "r.png", volume[0, 0], volume[0, 0], volume[0, 0], offset_x_px=0, offset_y_px=0, rotation_deg=0, correlation=1, method="m"
        )
    assert not any(tmp_path.iterdir())


def test_contrast_ignores_the_zero_background():
    image = np.zeros((100, 100), np.uint16)
    image[:10] = np.arange(1000, 2000, 1).reshape(10, 100)  # 10 % foreground
    low, high = _contrast_limits(image)
    assert 1000 < low < 1020 and 1980 < high < 2000
    assert _contrast_limits(np.zeros((4, 4))) == (0.0, 1.0)


def test_figures_drawn_concurrently_equal_those_drawn_alone(tmp_path):
    figures = _figures(SPECIMEN, dpi=40)
    alone = {name: imread(draw(tmp_path / f"alone_{name}.png")) for name, draw in figures.items()}
    with ThreadPoolExecutor(max_workers=len(figures)) as pool:
        futures = {name: pool.submit(draw, tmp_path / f"thread_{name}.png") for name, draw in figures.items()}
        together = {name: imread(future.result()) for name, future in futures.items()}
    for name, image in together.items():
        np.testing.assert_array_equal(image, alone[name], err_msg=name)


@pytest.mark.parametrize(("channels", "mode"), [(3, "RGB"), (4, "RGBA")])
def test_png_encoder_round_trips(tmp_path, channels, mode):
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, channels), dtype=np.uint8)
    (tmp_path / "noise.png").write_bytes(_png_bytes(pixels))
    with Image.open(tmp_path / "noise.png") as decoded:
        assert decoded.mode == mode
        np.testing.assert_array_equal(np.asarray(decoded), pixels)


def test_figures_have_their_size_in_pixels_and_are_opaque(tmp_path):
    path = _figures(SPECIMEN)["registration"](tmp_path / "registration.png")
    with Image.open(path) as figure:
        assert figure.size == (round(11.5 * diagnostics.DPI), round(8.5 * diagnostics.DPI))
        assert np.asarray(figure)[..., 3].min() == 255


def test_histogram_samples_of_a_correction_equal_those_of_the_corrected_volume():
    volume = SPECIMEN[1][::4]  # a strided slab, as the estimate's preview samples it

    def correct(voxels: np.ndarray) -> np.ndarray:
        return np.clip(voxels.astype(np.int32) - 400, 0, None).astype(np.uint16)

    expected = diagnostics.histogram_samples(correct(volume))
    assert expected.size > 0 and expected.min() > 0
    np.testing.assert_array_equal(diagnostics.histogram_samples(volume, correct), expected)
