"""Content-weighted fusion of the two registered orthogonal views into one volume on an isotropic grid.

Method (:func:`fuse_views`): the output is the isotropic grid of voxel ``config.voxel_um`` covering VW00's volume
in VW00's frame. It is computed in blocks of ``config.block_size^3`` output voxels (``config.threads`` at once,
each independent of the others: the result does not depend on the order or the threads). For a block, each
view is resampled (through its transform into VW00's frame, with ``config.interpolation_order``) onto the block,
reading only the input sub-volume under it; its weight is the product of its border blending and its content
weight (:mod:`~isoview_core.isotropic.weights`), and the block is ``sum(w_i v_i) / sum(w_i)``.

The content weights are Gaussian averages over micrometres (``content_sigmas_um``), so they are computed on the
output grid coarsened :data:`CONTENT_BIN` times (the view resampled linearly there) and interpolated linearly
onto the block: a block's coarse region needs a halo of
:func:`~isoview_core.isotropic.weights.content_weights_halo` coarse voxels to equal the whole coarse grid's
computation, so the result does not depend on the block size and the memory beyond the output is bounded by
it. Computed at the output voxel instead, the halo (40 voxels at 0.81 um) made a 64^3 block resample and filter
11x its own voxels: 10 us per output voxel against 1.4 in one block, on 156 x 160 x 160 voxels.

A weighted average does not make the resolution isotropic: where both views are weighted alike, a point source
is the mean of an image elongated along z (VW00) and one elongated along x (VW90), a cross rather than a
sphere (on the simulator, bead FWHM (z, y, x) 5.0, 2.0, 4.8 um from views of 8 and 2 um). It averages the noise
of both views, and where one view is degraded (deep in the specimen, far from its objective) its content weight
hands the region to the other; multi-view deconvolution
(:mod:`~isoview_core.isotropic.deconvolution`) then restores an isotropic resolution.

References
----------
.. [1] Preibisch, S., Rohlfing, T., Hasak, M. P. & Tomancak, P. (2008). Mosaicing of single plane illumination
   microscopy images using groupwise registration and fast content-based image fusion. Proc. SPIE 6914, 69140E.
.. [2] Preibisch, S. et al. (2014). Efficient Bayesian-based multiview deconvolution. Nat. Methods 11, 645-648.
.. [3] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with isotropic spatial
   resolution. Nat. Methods 12, 1171-1178.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat
from scipy import ndimage

from isoview_core.isotropic.config import IsotropicConfig
from isoview_core.isotropic.geometry import IsotropicGrid, isotropic_grid, resample_onto_grid
from isoview_core.isotropic.weights import blending_weights, content_weights, content_weights_halo

__all__ = [
    "IsotropicFusionConfig",
    "IsotropicVolume",
    "PlacedView",
    "ViewOnGrid",
    "VolumeSink",
    "block_region",
    "compute_blocks",
    "fuse_placed",
    "fuse_views",
    "grid_blocks",
    "grid_sized",
    "output_grid",
    "placed_views",
    "sample_onto_grid",
]

Block = tuple[slice, slice, slice]

CONTENT_BIN = 2
"""The content weights are computed on the output grid coarsened this many times per axis (module docstring)."""


class IsotropicFusionConfig(BaseModel):
    """Weights of the content-based fusion; grid, block size and interpolation come from :class:`IsotropicConfig`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_sigmas_um: tuple[PositiveFloat, PositiveFloat] = Field(
        (2.0, 6.0),
        description="(sigma_1, sigma_2) of the content weights G(s2) * (I - G(s1) * I)^2 (um): s1 about the size of a "
        "nucleus' detail and of the views' axial PSF sigma, s2 the neighbourhood over which the detail's energy is "
        "averaged (Preibisch 2008). Larger sigmas cost a larger halo per block.",
    )
    blending_width_um: PositiveFloat = Field(
        10.0,
        description="Each view fades to zero over this distance (um, its own frame) towards the faces of its volume, "
        "so that where VW90 ends inside the output grid there is no seam.",
    )


class VolumeSink(Protocol):
    """Where the blocks go: a preallocated numpy array, a zarr array, anything of the grid's shape sliced by blocks.

    It is read back block by block too: the deconvolution keeps its estimate there between passes.
    """

    shape: tuple[int, ...]

    def __getitem__(self, key: Block) -> np.ndarray: ...

    def __setitem__(self, key: Block, value: np.ndarray) -> None: ...


@dataclass(frozen=True)
class IsotropicVolume:
    """A volume on an isotropic grid of VW00's frame: ``values[k, j, i]`` sits at ``grid.origin_um + voxel_um (k, j, i)``."""

    values: np.ndarray | VolumeSink
    grid: IsotropicGrid

    @property
    def voxel_um(self) -> float:
        """The grid's isotropic voxel (um)."""
        return self.grid.voxel_um


@dataclass(frozen=True)
class PlacedView:
    """A view with its voxel size and its transform into the output frame (VW00's)."""

    volume: np.ndarray | VolumeSink
    voxel_um: tuple[float, float, float]
    to_output: np.ndarray
    smoothing_um: tuple[float, float, float] | None = None
    """Gaussian sigmas (its own z, y, x; um) it is blurred by before it is sampled (the deconvolution's data)."""

    def sampled(self, grid: IsotropicGrid, order: int) -> np.ndarray:
        """The view (smoothed, if so) resampled on ``grid`` (a region of the output grid), ``nan`` outside its volume."""
        return resample_onto_grid(
            self.volume, self.voxel_um, self.to_output, grid, order=order, block_size=max(grid.shape), outside=np.nan, smoothing_um=self.smoothing_um
        )

    def blending(self, grid: IsotropicGrid, width_um: float) -> np.ndarray:
        """Its border-blending weights on ``grid`` (:func:`~isoview_core.isotropic.weights.blending_weights`)."""
        return blending_weights(self.volume.shape, self.voxel_um, self.to_output, grid, width_um=width_um)


@dataclass(frozen=True)
class ViewOnGrid:
    """A placed view resampled once onto the whole output grid and kept there (in memory or a scratch file).

    It serves :meth:`sampled` for any region of that grid, or of a coarsening of it that shares its origin, by
    reading the stored samples instead of interpolating the view again: the deconvolution samples each view on
    every block in every pass, which was half of its time when interpolated each time.
    """

    placed: PlacedView
    samples: np.ndarray | VolumeSink
    grid: IsotropicGrid

    def sampled(self, grid: IsotropicGrid, order: int) -> np.ndarray:
        """The stored samples on ``grid`` (a region of the output grid or of its coarsening), ``nan`` outside the view.

        A grid that is not such a region is interpolated from the view itself, at ``order``.
        """
        step = grid.voxel_um / self.grid.voxel_um
        first = (np.asarray(grid.origin_um) - np.asarray(self.grid.origin_um)) / self.grid.voxel_um
        stride, starts = round(step), np.round(first).astype(int)
        aligned = abs(step - stride) < 1e-6 and np.allclose(first, starts, atol=1e-6) and starts.min() >= 0
        stops = [start + stride * (n - 1) + 1 for start, n in zip(starts, grid.shape, strict=True)]
        if not aligned or any(stop > n for stop, n in zip(stops, self.grid.shape, strict=True)):
            return self.placed.sampled(grid, order)
        return np.asarray(self.samples[tuple(slice(start, stop, stride) for start, stop in zip(starts, stops, strict=True))], dtype=np.float32)

    def blending(self, grid: IsotropicGrid, width_um: float) -> np.ndarray:
        """The view's border-blending weights on ``grid``."""
        return self.placed.blending(grid, width_um)


def sample_onto_grid(view: PlacedView, grid: IsotropicGrid, *, config: IsotropicConfig, out: np.ndarray | VolumeSink | None = None) -> ViewOnGrid:
    """Resample ``view`` onto the whole ``grid`` once, block by block (``config.threads`` at once), into ``out``.

    Parameters
    ----------
    view : PlacedView
        The view (smoothed, if so), placed in the output frame.
    grid : IsotropicGrid
        The output grid.
    config : IsotropicConfig
        Block size, interpolation order and threads.
    out : ndarray or VolumeSink, optional
        Where the samples go, of the grid's shape (e.g. a :class:`~isoview_core.formats.scratch.ScratchVolume`);
        default a new float32 array.

    Returns
    -------
    ViewOnGrid
        The view with its samples: ``nan`` where the grid lies outside the view's volume.
    """
    samples = grid_sized(out, grid, "samples")
    blocks = grid_blocks(grid.shape, config.block_size)
    order = config.interpolation_order
    for block, values in compute_blocks(lambda block: view.sampled(block_region(grid, block, (0, 0, 0))[0], order), blocks, config.resolved_threads()):
        samples[block] = values
    return ViewOnGrid(view, samples, grid)


def placed_views(
    vw00: np.ndarray, voxel00: Sequence[float], vw90: np.ndarray, voxel90: Sequence[float], vw90_to_vw00: np.ndarray
) -> tuple[PlacedView, PlacedView]:
    """Validate the two views and place them in VW00's frame (VW00 through the identity)."""
    transform = np.asarray(vw90_to_vw00, dtype=np.float64)
    if transform.shape != (4, 4) or not np.allclose(transform[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"vw90_to_vw00 {transform.tolist()}: expected a 4 x 4 affine with last row (0, 0, 0, 1)")
    return _placed(vw00, voxel00, np.eye(4), "VW00"), _placed(vw90, voxel90, transform, "VW90")


def output_grid(view00: PlacedView, view90: PlacedView, config: IsotropicConfig) -> IsotropicGrid:
    """The isotropic grid covering VW00's volume; its voxel is ``config.voxel_um`` or twice the finest lateral pixel.

    The default voxel is the registration's (:func:`~isoview_core.isotropic.registration.register_views`).
    """
    voxel = config.resolved_voxel_um(view00.voxel_um, view90.voxel_um)
    return isotropic_grid(view00.volume.shape, view00.voxel_um, voxel)


def grid_blocks(shape: Sequence[int], block_size: int) -> Iterator[Block]:
    """The output blocks of ``block_size^3`` voxels (smaller at the far faces) that tile ``shape``, in C order."""
    for corner in itertools.product(*(range(0, n, block_size) for n in shape)):
        z, y, x = (slice(c, min(c + block_size, n)) for c, n in zip(corner, shape, strict=True))
        yield z, y, x


def block_region(grid: IsotropicGrid, block: Block, halo: Sequence[int]) -> tuple[IsotropicGrid, Block]:
    """A block grown by ``halo`` voxels per axis and clipped to the grid, as a grid of its own, and the block in it.

    Parameters
    ----------
    grid : IsotropicGrid
        The whole output grid.
    block : tuple of slice
        The block, in the grid's indices.
    halo : sequence of int
        Voxels added on both sides, per axis.

    Returns
    -------
    region : IsotropicGrid
        The grown block, placed by its ``origin_um``.
    inner : tuple of slice
        Where the block lies in the region.
    """
    low = [max(s.start - h, 0) for s, h in zip(block, halo, strict=True)]
    high = [min(s.stop + h, n) for s, h, n in zip(block, halo, grid.shape, strict=True)]
    nz, ny, nx = (hi - lo for lo, hi in zip(low, high, strict=True))
    oz, oy, ox = (o + lo * grid.voxel_um for o, lo in zip(grid.origin_um, low, strict=True))
    z, y, x = (slice(s.start - lo, s.stop - lo) for s, lo in zip(block, low, strict=True))
    return IsotropicGrid(shape=(nz, ny, nx), voxel_um=grid.voxel_um, origin_um=(oz, oy, ox)), (z, y, x)


def fuse_views(
    vw00: np.ndarray,
    voxel00: Sequence[float],
    vw90: np.ndarray,
    voxel90: Sequence[float],
    vw90_to_vw00: np.ndarray,
    *,
    config: IsotropicConfig | None = None,
    fusion: IsotropicFusionConfig | None = None,
    out: np.ndarray | VolumeSink | None = None,
    samples: Sequence[np.ndarray | VolumeSink] | None = None,
) -> IsotropicVolume:
    """Fuse the two registered views on an isotropic grid of VW00's frame, block by block (module docstring).

    Parameters
    ----------
    vw00, vw90 : ndarray
        The two fused camera-pair views, (z, y, x), each with z along its own detection axis.
    voxel00, voxel90 : sequence of float
        Their voxel sizes (dz, dy, dx), um.
    vw90_to_vw00 : ndarray
        4 x 4 affine mapping VW90's physical points (um) into VW00's frame (the registration's result).
    config : IsotropicConfig, optional
        Isotropic voxel (``voxel_um``), ``block_size``, ``interpolation_order`` and ``threads`` of the stage.
    fusion : IsotropicFusionConfig, optional
        Content-weight sigmas and border-blending width.
    out : ndarray or VolumeSink, optional
        Where to write the fused volume, of the grid's shape (e.g. a zarr array or a
        :class:`~isoview_core.formats.scratch.ScratchVolume`); default a new float32 array. The views too may be
        such arrays: only the sub-volume under each block is read.
    samples : pair of ndarray or VolumeSink, optional
        Where to resample each view onto the whole grid first (:func:`sample_onto_grid`, e.g. scratch files): the
        blocks then read their samples, and the content weights' coarse samples, instead of interpolating each
        block's region and its halo. Default: interpolated per block, nothing kept.

    Returns
    -------
    IsotropicVolume
        ``out`` (or the new array) and its grid. Where no view has content weight (a perfectly flat region), the
        plain mean of the views present is used; outside both views, 0.

    Raises
    ------
    ValueError
        If a view or its voxel size is malformed, the transform is not affine, or ``out`` has the wrong shape.

    References
    ----------
    .. [1] Preibisch, S., Rohlfing, T., Hasak, M. P. & Tomancak, P. (2008). Proc. SPIE 6914, 69140E (content-based
       fusion weights, local entropy approximated by local variance).
    .. [2] Preibisch, S. et al. (2014). Efficient Bayesian-based multiview deconvolution. Nat. Methods 11, 645-648
       (content-based fusion of multi-view light-sheet data).
    """
    config = config or IsotropicConfig()
    views = placed_views(vw00, voxel00, vw90, voxel90, vw90_to_vw00)
    grid = output_grid(*views, config)
    if samples is not None:
        views = tuple(sample_onto_grid(view, grid, config=config, out=where) for view, where in zip(views, samples, strict=True))
    return fuse_placed(views, grid, config=config, fusion=fusion, out=out)


def fuse_placed(
    views: Sequence[PlacedView | ViewOnGrid], grid: IsotropicGrid, *, config: IsotropicConfig, fusion: IsotropicFusionConfig | None = None, out: np.ndarray | VolumeSink | None = None
) -> IsotropicVolume:
    """:func:`fuse_views` of views already placed (and possibly smoothed, or already resampled onto ``grid``), onto ``grid``."""
    fusion = fusion or IsotropicFusionConfig()
    target = grid_sized(out, grid)
    blocks = grid_blocks(grid.shape, config.block_size)
    for block, values in compute_blocks(lambda block: _fused_block(views, grid, block, config.interpolation_order, fusion), blocks, config.resolved_threads()):
        target[block] = values
    return IsotropicVolume(values=target, grid=grid)


def compute_blocks(function: Callable[[Block], np.ndarray], blocks: Iterable[Block], threads: int) -> Iterator[tuple[Block, np.ndarray]]:
    """``(block, function(block))`` in the blocks' order, ``threads`` of them computed at once.

    The caller writes each result: a sink need not accept concurrent writes. At most ``2 threads`` results wait, so
    the memory stays a few blocks'. scipy's interpolation, filters and FFTs release the GIL (2 threads: 1.75x on
    2 cores).
    """
    if threads <= 1:
        for block in blocks:
            yield block, function(block)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="isoview-blocks") as pool:
        pending: deque = deque()
        for block in blocks:
            pending.append((block, pool.submit(function, block)))
            if len(pending) >= 2 * threads:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _fused_block(views: Sequence[PlacedView | ViewOnGrid], grid: IsotropicGrid, block: Block, order: int, fusion: IsotropicFusionConfig) -> np.ndarray:
    """One output block: sum(w_i v_i) / sum(w_i), the plain mean where all weights vanish."""
    block_grid, _ = block_region(grid, block, (0, 0, 0))
    shape = tuple(s.stop - s.start for s in block)
    weighted, weights, values, present = (np.zeros(shape, dtype=np.float32) for _ in range(4))
    for view in views:
        sampled = view.sampled(block_grid, order)
        inside = np.isfinite(sampled)
        value = np.where(inside, sampled, 0.0)
        weight = np.where(inside, view.blending(block_grid, fusion.blending_width_um) * _content_on_block(view, grid, block, fusion), 0.0)
        weighted += weight * value
        weights += weight
        values += value
        present += inside
    plain = np.divide(values, present, out=np.zeros(shape, dtype=np.float32), where=present > 0)
    return np.divide(weighted, weights, out=plain, where=weights > 0)


def content_grid(grid: IsotropicGrid) -> IsotropicGrid:
    """The grid the content weights are computed on: the output grid coarsened :data:`CONTENT_BIN` times, same origin."""
    return IsotropicGrid(
        shape=tuple(-(-n // CONTENT_BIN) for n in grid.shape), voxel_um=grid.voxel_um * CONTENT_BIN, origin_um=grid.origin_um
    )


def _content_on_block(view: PlacedView | ViewOnGrid, grid: IsotropicGrid, block: Block, fusion: IsotropicFusionConfig) -> np.ndarray:
    """The view's content weights on a block: computed on the coarse grid (block, interpolation margin and halo),
    then interpolated linearly onto the block's voxels."""
    coarse = content_grid(grid)
    covering = tuple(slice(s.start // CONTENT_BIN, min((s.stop - 1) // CONTENT_BIN + 2, n)) for s, n in zip(block, coarse.shape, strict=True))
    region, inner = block_region(coarse, covering, (content_weights_halo(coarse.voxel_um, fusion.content_sigmas_um),) * 3)
    content = content_weights(view.sampled(region, 1), coarse.voxel_um, fusion.content_sigmas_um)[inner]
    offset = [s.start / CONTENT_BIN - c.start for s, c in zip(block, covering, strict=True)]
    shape = tuple(s.stop - s.start for s in block)
    return ndimage.affine_transform(content, np.full(3, 1.0 / CONTENT_BIN), offset=offset, output_shape=shape, order=1, mode="nearest")


def _placed(volume: np.ndarray, voxel_um: Sequence[float], to_output: np.ndarray, name: str) -> PlacedView:
    """A validated view."""
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"{name} of shape {volume.shape}: expected a (z, y, x) volume with at least 2 voxels per axis")
    if len(voxel_um) != 3 or min(voxel_um) <= 0:
        raise ValueError(f"{name} voxel size {tuple(voxel_um)}: expected three positive sizes (dz, dy, dx) in um")
    return PlacedView(volume, (float(voxel_um[0]), float(voxel_um[1]), float(voxel_um[2])), to_output)


def grid_sized(array: np.ndarray | VolumeSink | None, grid: IsotropicGrid, name: str = "output") -> np.ndarray | VolumeSink:
    """``array`` checked to have the grid's shape (a ``ValueError`` naming it otherwise), or a new float32 array."""
    if array is None:
        return np.empty(grid.shape, dtype=np.float32)
    if tuple(array.shape) != grid.shape:
        raise ValueError(f"{name} of shape {tuple(array.shape)}: the isotropic grid of VW00 needs {grid.shape}")
    return array
