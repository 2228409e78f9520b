"""Isotropic stage (issue 16): isoview side by side with multiview-stitcher on the same two simulated orthogonal views.

Simulates VW00 and VW90 of one specimen with the known rigid transform between them
(:func:`isoview_core.synthetic.simulate_orthogonal_views`, its defaults: PSF FWHM 1 um lateral and 4 um axial,
VW90 turned 90 degrees about y, then 1.5 degrees about an oblique axis and shifted by (6, -4.5, 8) um), writes
them to a scratch folder and runs every step of every method in a fresh child process of its own:

* ``isoview``: ``register_views`` (3D rigid, coarse-to-fine, from the nominal transform), then ``fuse_views``
  (border blending times content weights) through the registered transform, the views resampled onto the grid
  once first, as ``isoview isotropic`` does;
* ``isoview + deconvolution``: the same registration (one run, shared), then ``deconvolve_views``: its
  content-weighted fusion as the start, 2 iterations with the simulator's true PSF as ``GaussianPsf``;
* ``multiview-stitcher``: ``registration.register`` with ``phase_correlation_registration`` (a translation), then
  again with ``registration_ITKElastix`` (rigid, from the phase correlation's result; itk-elastix, no ANTsPy),
  both views placed by the same nominal transform isoview starts from; then ``fusion.fuse`` with its
  content-based weights (Preibisch) onto isoview's grid.

Reported per method, against the simulator's truth, on the common isotropic grid (VW00's frame, isoview's
default voxel, twice the lateral pixel; the grid of the sharp specimen ``specimen_iso``):

* registration error: translation at the centre of the views' overlap (isotropic voxels) and rotation (degrees);
* bead FWHM along z, y and x (median over the simulator's beads, um) and the anisotropy (largest / smallest);
* NCC with the sharp specimen inside the views' overlap: per-plane (the mean over the z planes that cut the
  specimen, as ``tests/test_isotropic_fusion.py``) and over the whole overlap at once;
* per step: wall and CPU seconds of the call itself (in the child; CPU of the process and of every process it
  started), the child process's wall and CPU seconds (start-up, imports, reading the views and writing the result
  included), its peak RSS (the process tree's resident sets summed, sampled every 0.05 s, at least the largest
  single process's ``ru_maxrss``) and its RSS just before the call (imports and the two views).

For context, without a method: the nominal transform's registration error, and each view alone placed through
the true transform (its bead FWHM and NCC).

Run: ``python benchmarks/bench_isotropic.py [--shape 128 512 512] [--voxel 2.0 0.40625 0.40625] [--seed 0]
[--quick] [--methods ...] [--output benchmarks/results/isotropic.json]``; ``--quick`` is a smoke run on
48 x 96 x 96 views of 1 um pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil

from bench_end_to_end import run_measured
from machine import child_environment, machine_info, source_revision

if TYPE_CHECKING:
    from isoview_core.synthetic import OrthogonalViews

# Light imports only up to here: multiview-stitcher's overlap graph runs on dask's "processes" scheduler, whose
# spawned workers import this module again.

DEFAULT_SHAPE = (128, 512, 512)
DEFAULT_VOXEL_UM = (2.0, 0.40625, 0.40625)
"""The simulator's default voxel: 2 um z step, the 16x objectives' 0.40625 um pixel."""
QUICK_SHAPE = (48, 96, 96)
QUICK_VOXEL_UM = (2.0, 1.0, 1.0)
"""The smoke run: the registration tests' views."""
DECONVOLUTION_ITERATIONS = 2
PHASE_CORRELATION_VOXELS = 2.0
"""multiview-stitcher's phase correlation runs on the views binned to about this many isotropic voxels per pixel."""
ELASTIX_VOXELS = 1.0
"""... and its elastix refinement on the views binned to about one isotropic voxel (isoview's finest level)."""
DIMS = ("z", "y", "x")


# --- inputs shared by the parent and the children ---------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What every step reads: the two views, their voxel sizes, the nominal transform, the grid and the PSF."""

    vw00: np.ndarray
    vw90: np.ndarray
    voxel00: tuple[float, float, float]
    voxel90: tuple[float, float, float]
    nominal: np.ndarray
    """4 x 4 start of every registration: VW90 turned 90 degrees about y, centre onto VW00's centre."""
    iso_voxel_um: float
    grid_shape: tuple[int, int, int]
    psf_fwhm_um: tuple[float, float]
    """(lateral, axial) FWHM of both views' PSF, the simulator's truth."""

    def save(self, folder: Path) -> None:
        """Write the views as ``.npy`` and the rest as ``inputs.json`` into ``folder``."""
        np.save(folder / "vw00.npy", self.vw00)
        np.save(folder / "vw90.npy", self.vw90)
        metadata = {
            "voxel00": self.voxel00,
            "voxel90": self.voxel90,
            "nominal": self.nominal.tolist(),
            "iso_voxel_um": self.iso_voxel_um,
            "grid_shape": self.grid_shape,
            "psf_fwhm_um": self.psf_fwhm_um,
        }
        (folder / "inputs.json").write_text(json.dumps(metadata))

    @classmethod
    def load(cls, folder: Path) -> Inputs:
        """Read what :meth:`save` wrote."""
        metadata = json.loads((folder / "inputs.json").read_text())
        return cls(
            vw00=np.load(folder / "vw00.npy"),
            vw90=np.load(folder / "vw90.npy"),
            voxel00=tuple(metadata["voxel00"]),
            voxel90=tuple(metadata["voxel90"]),
            nominal=np.asarray(metadata["nominal"]),
            iso_voxel_um=metadata["iso_voxel_um"],
            grid_shape=tuple(metadata["grid_shape"]),
            psf_fwhm_um=tuple(metadata["psf_fwhm_um"]),
        )


@dataclass
class StepOutput:
    """What a step hands on: a VW90 -> VW00 transform (registrations) or a volume on the grid (fusions)."""

    transform: np.ndarray | None = None
    volume: np.ndarray | None = None
    info: dict = field(default_factory=dict)


# --- the steps (each runs in a child process) -------------------------------------------------------------------


def isoview_register(inputs: Inputs, _: np.ndarray | None) -> StepOutput:
    """``register_views`` with its defaults, from the nominal transform."""
    from isoview_core.isotropic import register_views

    result = register_views(inputs.vw00, inputs.voxel00, inputs.vw90, inputs.voxel90, initial=inputs.nominal)
    info = {"quality": result.quality, "quality_before": result.quality_before, "timings_s": result.timings_s}
    return StepOutput(transform=result.matrix(), info=info)


def isoview_fuse(inputs: Inputs, transform: np.ndarray | None) -> StepOutput:
    """``fuse_views`` with its defaults (content-weighted) through the registered transform, each view resampled onto the
    grid once first (in memory here; ``isoview isotropic`` keeps them in scratch files)."""
    from isoview_core.isotropic import IsotropicConfig
    from isoview_core.isotropic.fusion import IsotropicFusionConfig, fuse_views, output_grid, placed_views

    grid = output_grid(*placed_views(inputs.vw00, inputs.voxel00, inputs.vw90, inputs.voxel90, transform), IsotropicConfig())
    samples = [np.empty(grid.shape, dtype=np.float32) for _ in range(2)]
    volume = fuse_views(inputs.vw00, inputs.voxel00, inputs.vw90, inputs.voxel90, transform, samples=samples)
    return StepOutput(volume=np.asarray(volume.values), info={"fusion": IsotropicFusionConfig().model_dump(mode="json")})


def isoview_deconvolve(inputs: Inputs, transform: np.ndarray | None) -> StepOutput:
    """``deconvolve_views`` (its fusion included), 2 iterations, the simulator's PSF for both views."""
    from isoview_core.isotropic.deconvolution import GaussianPsf, IsotropicDeconvolutionConfig, deconvolve_views

    lateral, axial = inputs.psf_fwhm_um
    psf = GaussianPsf(lateral_fwhm_um=lateral, axial_fwhm_um=axial)
    settings = IsotropicDeconvolutionConfig(iterations=DECONVOLUTION_ITERATIONS)
    volume = deconvolve_views(
        inputs.vw00, inputs.voxel00, inputs.vw90, inputs.voxel90, transform, psf00=psf, psf90=psf, deconvolution=settings
    )
    return StepOutput(volume=np.asarray(volume.values), info={"psf": psf.model_dump(), "deconvolution": settings.model_dump(mode="json")})


def mvs_images(inputs: Inputs, vw90_to_vw00: np.ndarray, transform_key: str) -> list:
    """The two views as multiview-stitcher images (single scale): VW00 through the identity, VW90 through a transform.

    Both packages place voxel ``(k, j, i)`` at ``(k dz, j dy, i dx)`` and map (z, y, x) positions by the affine.
    """
    import xarray as xr
    from multiview_stitcher import msi_utils
    from multiview_stitcher import spatial_image_utils as si_utils

    def image(volume: np.ndarray, voxel: Sequence[float], affine: np.ndarray):
        sim = si_utils.get_sim_from_array(
            volume,
            dims=list(DIMS),
            scale=dict(zip(DIMS, voxel)),
            translation=dict.fromkeys(DIMS, 0.0),
            affine=xr.DataArray(affine, dims=["x_in", "x_out"]),
            transform_key=transform_key,
        )
        return msi_utils.get_msim_from_sim(sim, scale_factors=[])

    return [image(inputs.vw00, inputs.voxel00, np.eye(4)), image(inputs.vw90, inputs.voxel90, vw90_to_vw00)]


def mvs_vw90_to_vw00(images: list, transform_key: str) -> np.ndarray:
    """VW90 -> VW00 of two multiview-stitcher images in one of their coordinate systems."""
    from multiview_stitcher import msi_utils

    affines = [np.asarray(msi_utils.get_transform_from_msim(image, transform_key).squeeze()) for image in images]
    return np.linalg.solve(affines[0], affines[1])


def mvs_binning(inputs: Inputs, iso_voxels: float) -> dict[str, int]:
    """Binning factors (z, y, x) that bring the views' voxels to about ``iso_voxels`` isotropic voxels."""
    target = iso_voxels * inputs.iso_voxel_um
    return {dim: max(1, round(target / size)) for dim, size in zip(DIMS, inputs.voxel00)}


MVS_REGISTRATION = {
    "reg_channel_index": 0,
    "pre_registration_pruning_method": None,
    "groupwise_resolution_method": "shortest_paths",
    "groupwise_resolution_kwargs": {"reference_view": 0},
}
"""Two views: no graph pruning; VW00 stays put and VW90 takes the pairwise transform (the default global
optimisation fits a translation only and would drop the rotation)."""


def mvs_register(inputs: Inputs, _: np.ndarray | None) -> StepOutput:
    """Phase correlation from the nominal transform, then elastix's rigid refinement from its result."""
    from multiview_stitcher import registration

    images = mvs_images(inputs, inputs.nominal, "nominal")
    stages = (
        ("nominal", "phase_correlation", registration.phase_correlation_registration, {}, PHASE_CORRELATION_VOXELS),
        ("phase_correlation", "rigid", registration.registration_ITKElastix, {"transform_types": ["rigid"]}, ELASTIX_VOXELS),
    )
    timings, binnings = {}, {}
    for start, key, function, arguments, iso_voxels in stages:
        binnings[key] = mvs_binning(inputs, iso_voxels)
        tic = time.perf_counter()
        registration.register(
            images, transform_key=start, new_transform_key=key, pairwise_reg_func=function,
            pairwise_reg_func_kwargs=arguments, registration_binning=binnings[key], **MVS_REGISTRATION,
        )  # fmt: skip
        timings[key] = time.perf_counter() - tic
    info = {
        "phase_correlation_vw90_to_vw00": mvs_vw90_to_vw00(images, "phase_correlation").tolist(),
        "registration_binning": binnings,
        "timings_s": timings,
    }
    return StepOutput(transform=mvs_vw90_to_vw00(images, "rigid"), info=info)


def mvs_fuse(inputs: Inputs, transform: np.ndarray | None) -> StepOutput:
    """``fusion.fuse`` with content-based weights of isoview's sigmas and blending width, onto isoview's grid."""
    from multiview_stitcher import fusion, msi_utils, weights

    from isoview_core.isotropic.fusion import IsotropicFusionConfig

    defaults = IsotropicFusionConfig()
    sigma_1, sigma_2 = (sigma / inputs.iso_voxel_um for sigma in defaults.content_sigmas_um)  # output pixels
    sims = [msi_utils.get_sim_from_msim(image) for image in mvs_images(inputs, transform, "registered")]
    fused = fusion.fuse(
        sims,
        transform_key="registered",
        weights_func=weights.content_based,
        weights_func_kwargs={"sigma_1": sigma_1, "sigma_2": sigma_2},
        # content_based asks for 2 sigma_2 pixels of overlap, a float that breaks the chunk shapes: an int as large
        overlap_in_pixels=math.ceil(2 * sigma_2),
        blending_widths=dict.fromkeys(DIMS, defaults.blending_width_um),
        output_stack_properties={
            "spacing": dict.fromkeys(DIMS, inputs.iso_voxel_um),
            "origin": dict.fromkeys(DIMS, 0.0),
            "shape": dict(zip(DIMS, inputs.grid_shape)),
        },
    )
    volume = np.asarray(fused.data.compute()).reshape(inputs.grid_shape)  # (t, c, z, y, x) with t = c = 1
    info = {"content_sigmas_px": [sigma_1, sigma_2], "blending_width_um": defaults.blending_width_um, "dtype": str(volume.dtype)}
    return StepOutput(volume=volume, info=info)


@dataclass(frozen=True)
class Step:
    """One measured child process: a function of the inputs and, for a fusion, of a registration's transform."""

    run: Callable[[Inputs, np.ndarray | None], StepOutput]
    uses: str | None = None
    """The registration step whose transform it takes."""


STEPS = {
    "isoview register": Step(isoview_register),
    "isoview fuse": Step(isoview_fuse, uses="isoview register"),
    "isoview deconvolve": Step(isoview_deconvolve, uses="isoview register"),
    "multiview-stitcher register": Step(mvs_register),
    "multiview-stitcher fuse": Step(mvs_fuse, uses="multiview-stitcher register"),
}
METHODS = {
    "isoview": ("isoview register", "isoview fuse"),
    "isoview + deconvolution": ("isoview register", "isoview deconvolve"),
    "multiview-stitcher": ("multiview-stitcher register", "multiview-stitcher fuse"),
}
"""Each method: its registration, then the step whose volume is measured."""


def step_path(work: Path, step: str, suffix: str) -> Path:
    """Where a step's record (``.json``) or volume (``.npy``) goes."""
    return work / f"{re.sub(r'[^a-z0-9]+', '_', step)}{suffix}"


def rss_mib() -> float:
    """This process's resident set now, MiB."""
    return psutil.Process().memory_info().rss / 2**20


@contextmanager
def timed(record: dict) -> Iterator[None]:
    """Wall and CPU seconds of the block into ``record``: this process's and those of the processes it waited for."""
    tic, cpu, children = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    yield
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    record["wall_s"] = time.perf_counter() - tic
    record["cpu_s"] = time.process_time() - cpu + (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)


def run_step(step: str, work: Path) -> None:
    """The child: load the inputs (and the transform the step uses), run the step, write its record and volume."""
    inputs = Inputs.load(work)
    uses = STEPS[step].uses
    transform = np.asarray(json.loads(step_path(work, uses, ".json").read_text())["transform"]) if uses else None
    record: dict = {"rss_before_mib": rss_mib()}
    with timed(record):
        output = STEPS[step].run(inputs, transform)
    record["info"] = output.info
    if output.transform is not None:
        record["transform"] = output.transform.tolist()
    if output.volume is not None:
        np.save(step_path(work, step, ".npy"), output.volume)
    step_path(work, step, ".json").write_text(json.dumps(record))


# --- the parent: simulate, measure the children, evaluate ------------------------------------------------------


def measure_child(command: list[str]) -> dict:
    """Run ``command`` to completion: its wall and CPU seconds and peak RSS (MiB), its exit status, its output's tail.

    Measured as ``bench_end_to_end.run_measured`` measures the commands: CPU seconds from ``wait4`` on the child
    (it and every process it waited for) or the sampled process tree, whichever is larger; the peak RSS is the
    largest sum over the tree sampled, at least the child's own peak.
    """
    measured = run_measured(command, environment=child_environment(None))
    return {
        "returncode": measured.returncode,
        "process_wall_s": measured.wall_s,
        "process_cpu_s": measured.cpu_s,
        "peak_rss_mib": measured.peak_rss_bytes / 2**20,
        "output_tail": measured.output_tail,
    }


def run_steps(steps: Sequence[str], work: Path) -> dict[str, dict]:
    """Every step in its own child, in order; its record with the child's cost (``error`` and output if it failed)."""
    records = {}
    for step in steps:
        uses = STEPS[step].uses
        if uses and "error" in records.get(uses, {"error": "not run"}):
            records[step] = {"error": f"{uses} did not run"}
            continue
        print(f"{step} ...", file=sys.stderr, flush=True)
        cost = measure_child([sys.executable, str(Path(__file__).resolve()), "--child", step, "--work", str(work)])
        path = step_path(work, step, ".json")
        if cost["returncode"] == 0 and path.is_file():
            records[step] = {**json.loads(path.read_text()), **{k: v for k, v in cost.items() if k != "output_tail"}}
        else:
            records[step] = {"error": f"exit status {cost['returncode']}", **cost}
        print(f"{step}: {records[step].get('wall_s', float('nan')):.1f} s, peak {cost['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
    return records


def registration_errors(estimate: np.ndarray, truth: np.ndarray, centre_um: np.ndarray, voxel_um: float) -> dict:
    """Translation error at the overlap's centre (isotropic voxels) and rotation error (degrees) of a VW90 -> VW00 estimate.

    As ``tests/test_isotropic_registration.py``: where the estimate puts the VW90 point that truly lies at the centre.
    """
    from isoview_core.isotropic import rotation_angle_deg

    centre = np.append(centre_um, 1.0)
    at_centre = estimate @ np.linalg.solve(truth, centre)
    return {
        "translation_error_voxels": float(np.linalg.norm(at_centre[:3] - centre[:3]) / voxel_um),
        "rotation_error_deg": rotation_angle_deg(estimate[:3, :3].T @ truth[:3, :3]),
    }


def bead_widths(volume: np.ndarray, voxel_um: float, beads_um: np.ndarray) -> dict:
    """Median FWHM (z, y, x) of the beads whose three profiles fit, um, and its anisotropy (largest / smallest)."""
    from isoview_core.synthetic import measure_point_source

    widths = []
    for bead in beads_um:
        try:
            widths.append(measure_point_source(volume, bead, (voxel_um,) * 3).fwhm_um)
        except ValueError:
            continue
    if not widths:
        return {"bead_fwhm_um": None, "anisotropy": None, "beads_measured": 0}
    median = np.median(widths, axis=0)
    return {"bead_fwhm_um": median.tolist(), "anisotropy": float(median.max() / median.min()), "beads_measured": len(widths)}


def correlations(volume: np.ndarray, truth: np.ndarray, overlap: np.ndarray) -> dict:
    """Pearson correlation with the sharp specimen inside the overlap: mean over z planes, and over the whole overlap.

    Planes count where they cut the specimen (the truth's standard deviation there above 1e-3 of its peak; beyond
    the body only the Gaussians' far tails remain) and hold at least 100 overlap voxels, as in the fusion tests.
    """

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
        return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))

    planes = [
        pearson(plane[inside], sharp[inside])
        for plane, sharp, inside in zip(volume, truth, overlap, strict=True)
        if inside.sum() >= 100 and sharp[inside].std() >= 1e-3 * truth.max()
    ]
    return {"plane_ncc": float(np.mean(planes)), "planes": len(planes), "volume_ncc": pearson(volume[overlap], truth[overlap])}


def quality(volume: np.ndarray, views: OrthogonalViews, overlap: np.ndarray) -> dict:
    """Bead widths and correlations of a volume on the grid of the sharp specimen."""
    return {**bead_widths(volume, views.iso_voxel_um, views.beads_um), **correlations(volume, views.specimen_iso, overlap)}


def references(views: OrthogonalViews) -> tuple[dict, np.ndarray]:
    """Each view alone resampled onto the grid through the true transform (cubic), and the overlap they share."""
    from isoview_core.isotropic import IsotropicConfig, IsotropicGrid, resample_onto_grid

    grid = IsotropicGrid(shape=views.specimen_iso.shape, voxel_um=views.iso_voxel_um)
    order = IsotropicConfig().interpolation_order
    singles = {
        "VW00 alone": resample_onto_grid(views.vw00, views.voxel00, np.eye(4), grid, order=order, outside=np.nan),
        "VW90 alone (true transform)": resample_onto_grid(views.vw90, views.voxel90, views.vw90_to_vw00, grid, order=order, outside=np.nan),
    }
    overlap = np.logical_and(*(np.isfinite(single) for single in singles.values()))
    return {name: quality(np.nan_to_num(single), views, overlap) for name, single in singles.items()}, overlap


def evaluate(methods: Sequence[str], records: dict[str, dict], views: OrthogonalViews, work: Path) -> dict:
    """Per method: registration errors, bead widths, correlations, and the cost of its steps."""
    from isoview_core.synthetic import overlap_box_um

    low, high = overlap_box_um(views.config)

    def errors(matrix: Sequence[Sequence[float]]) -> dict:
        return registration_errors(np.asarray(matrix), views.vw90_to_vw00, (low + high) / 2, views.iso_voxel_um)

    context, overlap = references(views)
    nominal = json.loads((work / "inputs.json").read_text())["nominal"]
    results = {"nominal transform (start)": errors(nominal), **context}
    if "phase_correlation_vw90_to_vw00" in records.get("multiview-stitcher register", {}).get("info", {}):
        results["multiview-stitcher phase correlation only"] = errors(records["multiview-stitcher register"]["info"]["phase_correlation_vw90_to_vw00"])
    for method in methods:
        steps = METHODS[method]
        failed = [step for step in steps if "error" in records[step]]
        if failed:
            results[method] = {"error": "; ".join(f"{step}: {records[step]['error']}" for step in failed), "steps": list(steps)}
            continue
        volume = np.load(step_path(work, steps[-1], ".npy"))
        results[method] = {
            **errors(records[steps[0]]["transform"]),
            **quality(volume, views, overlap),
            "steps": list(steps),
            "wall_s": sum(records[step]["wall_s"] for step in steps),
            "cpu_s": sum(records[step]["cpu_s"] for step in steps),
            "peak_rss_mib": max(records[step]["peak_rss_mib"] for step in steps),
            "process_wall_s": sum(records[step]["process_wall_s"] for step in steps),
            "process_cpu_s": sum(records[step]["process_cpu_s"] for step in steps),
        }
    return results


def simulate(shape: Sequence[int], voxel_um: Sequence[float], seed: int) -> OrthogonalViews:
    """The simulator's defaults at this shape and voxel size, both views alike."""
    from isoview_core.synthetic import OrthogonalViewsConfig, simulate_orthogonal_views

    config = OrthogonalViewsConfig(shape00=tuple(shape), shape90=tuple(shape), voxel00_um=tuple(voxel_um), voxel90_um=tuple(voxel_um), seed=seed)
    return simulate_orthogonal_views(config)


def inputs_of(views: OrthogonalViews) -> Inputs:
    """The steps' inputs: the views, the nominal transform, isoview's default grid (that of the sharp specimen)."""
    from isoview_core.isotropic import IsotropicConfig, isotropic_grid
    from isoview_core.synthetic import nominal_vw90_to_vw00

    iso_voxel = IsotropicConfig().resolved_voxel_um(views.voxel00, views.voxel90)
    grid = isotropic_grid(views.vw00.shape, views.voxel00, iso_voxel)
    if grid.shape != views.specimen_iso.shape or iso_voxel != views.iso_voxel_um:
        raise RuntimeError(f"isoview's grid {grid.shape} of {iso_voxel} um is not the sharp specimen's {views.specimen_iso.shape} of {views.iso_voxel_um} um")
    config = views.config
    return Inputs(
        vw00=views.vw00, vw90=views.vw90, voxel00=views.voxel00, voxel90=views.voxel90,
        nominal=nominal_vw90_to_vw00(config.shape90, config.voxel90_um, config.shape00, config.voxel00_um),
        iso_voxel_um=iso_voxel, grid_shape=grid.shape, psf_fwhm_um=(config.psf_lateral_fwhm_um, config.psf_axial_fwhm_um),
    )  # fmt: skip


def code_fingerprint() -> str:
    """SHA-256 of isoview_core's Python sources as they are on disk now: what the children import.

    Others edit the tree while a benchmark runs; the fingerprint before and after tells whether every step ran the
    same code (the commit and ``git status`` alone do not see a file edited and saved back between two steps).
    """
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "isoview_core").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of the compared packages and of what their numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("isoview", "multiview-stitcher", "itk-elastix", "scipy", "scikit-image", "dask", "xarray"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def print_table(report: dict) -> None:
    """The methods (and the context rows) side by side, then the steps."""

    def number(value, digits: int) -> str:
        return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"

    settings = report["settings"]
    shape, voxel = settings["shape"], settings["voxel_um"]
    print(f"\nIsotropic stage: two views of {shape[0]} x {shape[1]} x {shape[2]} voxels of {voxel} um, grid {settings['grid_shape']} of {settings['iso_voxel_um']:g} um")
    print(f"{report['machine']['cpu_model']}, {report['machine']['logical_cores']} cores; NCC: mean over z planes (whole overlap)")
    header = f"{'':44s} {'shift err':>9s} {'rot err':>8s} {'bead FWHM z / y / x um':>22s} {'aniso':>6s} {'NCC':>14s} {'wall s':>7s} {'CPU s':>7s} {'peak MiB':>8s}"
    print(header)
    print(f"{'':44s} {'voxels':>9s} {'deg':>8s}")
    for name, row in report["results"].items():
        if "error" in row:
            print(f"{name:44s} failed: {row['error'][:90]}")
            continue
        fwhm = " / ".join(f"{width:.2f}" for width in row["bead_fwhm_um"]) if row.get("bead_fwhm_um") else "-"
        ncc = f"{row['plane_ncc']:.3f} ({row['volume_ncc']:.3f})" if "plane_ncc" in row else "-"
        print(
            f"{name:44s} {number(row.get('translation_error_voxels'), 3):>9s} {number(row.get('rotation_error_deg'), 3):>8s} {fwhm:>22s}"
            f" {number(row.get('anisotropy'), 2):>6s} {ncc:>14s} {number(row.get('wall_s'), 1):>7s} {number(row.get('cpu_s'), 1):>7s} {number(row.get('peak_rss_mib'), 0):>8s}"
        )
    print(f"\n{'step (own child process)':30s} {'wall s':>7s} {'CPU s':>7s} {'process wall s':>14s} {'process CPU s':>13s} {'peak MiB':>8s} {'before MiB':>10s}")
    for step, record in report["steps"].items():
        if "error" in record:
            print(f"{step:30s} failed: {record['error']}")
            continue
        print(
            f"{step:30s} {record['wall_s']:7.1f} {record['cpu_s']:7.1f} {record['process_wall_s']:14.1f} {record['process_cpu_s']:13.1f}"
            f" {record['peak_rss_mib']:8.0f} {record['rss_before_mib']:10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"), default=None, help=f"Each view's shape (default {DEFAULT_SHAPE}).")
    parser.add_argument("--voxel", type=float, nargs=3, metavar=("DZ", "DY", "DX"), default=None, help=f"Voxel size, um (default {DEFAULT_VOXEL_UM}).")
    parser.add_argument("--quick", action="store_true", help=f"Smoke run: {QUICK_SHAPE} at {QUICK_VOXEL_UM} um unless --shape / --voxel say otherwise.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "isotropic.json")
    parser.add_argument("--child", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_step(args.child, args.work)
        return

    shape = tuple(args.shape or (QUICK_SHAPE if args.quick else DEFAULT_SHAPE))
    voxel = tuple(args.voxel or (QUICK_VOXEL_UM if args.quick else DEFAULT_VOXEL_UM))
    steps = list(dict.fromkeys(step for method in args.methods for step in METHODS[method]))
    machine, fingerprint = machine_info(), code_fingerprint()  # the code the steps run, before they start
    tic = time.perf_counter()
    views = simulate(shape, voxel, args.seed)
    simulate_s = time.perf_counter() - tic
    inputs = inputs_of(views)
    with tempfile.TemporaryDirectory(prefix="isoview-isotropic-", dir=os.environ.get("BENCH_TMP")) as scratch:
        work = Path(scratch)
        inputs.save(work)
        records = run_steps(steps, work)
        print("evaluating ...", file=sys.stderr, flush=True)
        results = evaluate(args.methods, records, views, work)
    if code_fingerprint() != fingerprint:
        machine["changed_during_run"] = {**source_revision(), "isoview_core_sha256": code_fingerprint()}
        print("isoview_core changed while the steps ran: the steps may have run different code", file=sys.stderr)
    report = {
        "machine": {**machine, "isoview_core_sha256": fingerprint},  # the commit measured and the files changed since
        "versions": versions(),
        "settings": {
            "shape": shape,
            "voxel_um": voxel,
            "seed": args.seed,
            "simulation": "OrthogonalViewsConfig defaults at this shape and voxel, both views alike",
            "simulation_config": views.config.model_dump(mode="json"),
            "simulate_s": round(simulate_s, 1),
            "iso_voxel_um": inputs.iso_voxel_um,
            "grid_shape": inputs.grid_shape,
            "methods": {method: list(METHODS[method]) for method in args.methods},
            "isoview": "IsotropicConfig and IsotropicFusionConfig defaults; registration from the nominal transform; "
            f"deconvolve_views with {DECONVOLUTION_ITERATIONS} iterations and the simulator's PSF as GaussianPsf",
            "multiview_stitcher": {
                "install": "pip install 'multiview-stitcher[itk-elastix]' into the project's venv (no package it pins changed; "
                "ANTsPy not used: antspyx would downgrade numpy and scipy)",
                "registration": "register(phase_correlation_registration) from the nominal transform, then register("
                "registration_ITKElastix, transform_types=['rigid']) from its result; groupwise shortest_paths, reference view VW00",
                "registration_binning": {"phase_correlation": f"about {PHASE_CORRELATION_VOXELS:g} isotropic voxels per pixel", "elastix": f"about {ELASTIX_VOXELS:g}"},
                "fusion": "fusion.fuse(weights_func=weights.content_based) onto isoview's grid, interpolation order 1 (its default), "
                "content sigmas and blending width set to isoview's (2 and 6 um, 10 um); the output keeps the views' dtype, uint16",
                "scheduler": "dask's defaults (threads; 'processes' for the overlap graph)",
            },
            "measures": {
                "registration": "translation error at the centre of the views' overlap (isotropic voxels), rotation error (degrees)",
                "bead_fwhm_um": "median over the simulator's beads of the Gaussian fits along z, y, x (measure_point_source)",
                "plane_ncc": "mean over the z planes cutting the specimen of the Pearson correlation with specimen_iso inside both views' overlap",
                "volume_ncc": "the same over the whole overlap at once",
                "wall_s / cpu_s": "the step calls themselves, in their child processes (CPU: the process and the processes it waited for)",
                "process_wall_s / process_cpu_s": "the child processes whole: start-up, imports, reading the views, writing the result",
                "peak_rss_mib": "largest over the method's steps of the child's process-tree RSS (sampled every 0.05 s, at least its ru_maxrss)",
            },
        },
        "results": results,
        "steps": records,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"results in {args.output}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
