"""Write a synthetic acquisition in the nested raw layout (ALGORITHMS.md §1.1), at once or in real time.

```
OUT/ground_truth.json
OUT/SPM00/Background_0.tif .. Background_3.tif
OUT/SPM00/TM00000/ch0.xml, ch1.xml
OUT/SPM00/TM00000/ANG000/SPC00_TM00000_ANG000_CM<c>_CHN<0 for cameras 0/1, 1 for 2/3>_PH0.stack
```
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import numpy as np
import tifffile

from isoview_core.metadata import write_channel_xml
from isoview_core.naming import (
    RAW_STACK_PATTERN,
    SPECIMEN_DIR_PATTERN,
    angle_dir_name,
    background_name,
    channel_xml_name,
    raw_stack_name,
    raw_timepoint_dir_name,
    specimen_dir_name,
)
from isoview_core.synthetic.camera import camera_planes, dark_frame
from isoview_core.synthetic.config import CAMERAS, SimulationConfig, camera_role
from isoview_core.synthetic.ground_truth import GroundTruth, build_ground_truth

logger = logging.getLogger(__name__)

GROUND_TRUTH_NAME = "ground_truth.json"

DETECTION_FILTERS = {488: "BP525/50", 561: "BP593/46"}
"""Detection filter written to the XML per laser line (others: a long-pass at the laser line)."""

STAGE_POSITION = "X=1130.000_Y=1045.000_Z=-205.000_T=-1.0"
"""``specimen_XYZT`` of every timepoint: the stage does not move, the specimen drifts."""


def simulate_acquisition(
    out: Path,
    config: SimulationConfig,
    *,
    interval_s: float | None = None,
    on_timepoint: Callable[[int], None] | None = None,
    overwrite: bool = False,
    replay: Path | None = None,
) -> GroundTruth:
    """Write a synthetic IsoView acquisition and its ground truth.

    Parameters
    ----------
    out : Path
        Acquisition root; created if needed. It may hold other files, but no acquisition.
    config : SimulationConfig
        What to simulate.
    interval_s : float, optional
        Real-time mode: timepoint ``t`` starts ``t * interval_s`` seconds after the first, and
        each stack grows plane by plane (written and flushed one plane at a time, all four
        cameras together) over the interval, after the timepoint's XMLs, the way the microscope
        writes. Rendering slower than the schedule delays it. ``None``: as fast as possible.
    on_timepoint : callable, optional
        Called with the timepoint once all its files are complete.
    overwrite : bool
        Replace an acquisition already in ``out`` (its ``SPM##`` folders, flat-layout stacks and
        ground truth) instead of refusing.
    replay : Path, optional
        An acquisition simulated before with the same ``config`` but fewer timepoints: timepoint ``t``'s planes
        are read from its timepoint ``t mod N`` instead of being rendered (XMLs, dark frames and ground truth
        are written as usual). Rendering a full-size timepoint takes minutes of CPU; replaying lets a
        benchmark of the live service measure the service, not the simulator.

    Returns
    -------
    GroundTruth
        Also written first, to ``out/ground_truth.json``.

    Raises
    ------
    FileExistsError
        If ``out`` already holds an acquisition and ``overwrite`` is False.
    ValueError
        If ``interval_s`` is not positive.
    """
    if interval_s is not None and interval_s <= 0:
        raise ValueError(f"interval_s={interval_s}: a real-time interval must be > 0 seconds")
    out = Path(out)
    _clear_previous_acquisition(out, overwrite=overwrite)
    specimen_dir = out / specimen_dir_name(config.specimen)
    specimen_dir.mkdir(parents=True)
    truth = build_ground_truth(config)
    truth.save(out / GROUND_TRUTH_NAME)
    for camera in CAMERAS:
        tifffile.imwrite(specimen_dir / background_name(camera), dark_frame(config, camera))
    start = time.monotonic()
    for timepoint in range(config.timepoints):
        schedule = None if interval_s is None else (start + timepoint * interval_s, interval_s)
        _write_timepoint(specimen_dir, config, timepoint, schedule, replay)
        logger.info("synthetic acquisition %s: timepoint %d of %d written", out, timepoint, config.timepoints)
        if on_timepoint is not None:
            on_timepoint(timepoint)
    return truth


def _write_timepoint(specimen_dir: Path, config: SimulationConfig, timepoint: int, schedule: tuple[float, float] | None, replay: Path | None) -> None:
    """XMLs, then the four stacks plane by plane; ``schedule`` = (start, interval) paces the planes."""
    timepoint_dir = specimen_dir / raw_timepoint_dir_name(timepoint)
    angle_dir = timepoint_dir / angle_dir_name(0)
    angle_dir.mkdir(parents=True)
    for channel in sorted({camera_role(camera).channel for camera in CAMERAS}):
        write_channel_xml(timepoint_dir / channel_xml_name(channel), _channel_attributes(config, timepoint, channel))
    depth = config.shape[0]
    with ExitStack() as files:
        stacks = [
            files.enter_context(open(angle_dir / raw_stack_name(config.specimen, timepoint, camera, camera_role(camera).channel), "wb"))
            for camera in CAMERAS
        ]
        streams = [
            camera_planes(config, timepoint, camera) if replay is None else _replayed_planes(replay, config, timepoint, camera) for camera in CAMERAS
        ]
        for plane, images in enumerate(zip(*streams)):
            for stack, image in zip(stacks, images):
                stack.write(image.astype("<u2", copy=False).data)
                stack.flush()
            if schedule is not None:
                start, interval = schedule
                time.sleep(max(0.0, start + (plane + 1) * interval / depth - time.monotonic()))


def _replayed_planes(replay: Path, config: SimulationConfig, timepoint: int, camera: int) -> Iterator[np.ndarray]:
    """The planes of ``camera`` at timepoint ``t mod N`` of the acquisition simulated before in ``replay``, one at a time."""
    specimen_dir = replay / specimen_dir_name(config.specimen)
    recorded = sum(1 for entry in specimen_dir.iterdir() if (entry / angle_dir_name(0)).is_dir())
    source = timepoint % max(1, recorded)
    path = specimen_dir / raw_timepoint_dir_name(source) / angle_dir_name(0) / raw_stack_name(config.specimen, source, camera, camera_role(camera).channel)
    with open(path, "rb") as stack:  # read, not mapped: mapped pages would count as this process's memory
        for _ in range(config.shape[0]):
            yield np.fromfile(stack, dtype="<u2", count=config.shape[1] * config.shape[2]).reshape(config.shape[1:])


def _channel_attributes(config: SimulationConfig, timepoint: int, channel: int) -> dict[str, str]:
    """The ``push_config`` attributes of one channel XML (spec §1.4), in the microscope's order."""
    cameras = [camera for camera in CAMERAS if camera_role(camera).channel == channel]
    depth, height, width = config.shape
    wavelength = config.wavelengths_nm[channel]

    def per_camera(value: str) -> str:
        return ",".join([value] * len(cameras))

    return {
        "data_header": "isoview_synthetic",
        "specimen_name": f"synthetic_seed{config.seed}",
        "time_point": str(timepoint),
        "timestamp": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "specimen_XYZT": STAGE_POSITION,
        "camera_index": str(len(cameras)),
        "camera": "".join(str(camera) for camera in cameras),
        "camera_type": per_camera("C11440-22C"),
        "camera_roi": per_camera(f"0_{height}_0_{width}"),
        "wavelength": str(wavelength),
        "exposure_time": f"{config.exposure_ms:g}",
        "detection_filter": DETECTION_FILTERS.get(wavelength, f"LP{wavelength}"),
        "dimensions": per_camera(f"{width}x{height}x{depth}"),
        "z_step": f"{config.z_step_um:.3f}",
        "stack_direction": "Z" if camera_role(cameras[0]).view == 0 else "Y",
        "planes": per_camera(f"0-{depth - 1}"),
        "detection_objective": per_camera(f"SpecialOptics {config.magnification:g}x/0.71"),
        "camera_orientation": "Normal",
    }


def _clear_previous_acquisition(out: Path, *, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, remove) an acquisition already in ``out``."""
    if not out.is_dir():
        return
    previous = sorted(
        entry
        for entry in out.iterdir()
        if entry.name == GROUND_TRUTH_NAME
        or (entry.is_dir() and SPECIMEN_DIR_PATTERN.match(entry.name))
        or RAW_STACK_PATTERN.match(entry.name)
    )
    if not previous:
        return
    if not overwrite:
        names = ", ".join(entry.name for entry in previous[:4]) + (", ..." if len(previous) > 4 else "")
        raise FileExistsError(f"{out}: already holds an acquisition ({names}); pass overwrite=True to replace it")
    for entry in previous:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
