"""napari plugin (npe2) for IsoView results: ``napari ACQ.fused`` opens the live time series with physical scale.

What it opens, layer by layer, is described in :mod:`isoview_napari.reader`; :mod:`isoview_napari.live` extends
the time axis while an acquisition is being processed (``isoview view ACQ --live``). The manifest is
``napari.yaml`` beside this file, registered under the ``napari.manifest`` entry point. Nothing in
``isoview_core``, ``tasks`` or ``flows`` imports this package at import time: it needs the ``[viewer]`` extra.
"""
