"""isoview_core: the pure processing library of isoview (formats, discovery, correction, fusion, simulation).

It never imports prefect or watchdog; everything here works from a notebook.
"""

__version__ = "0.1.0"
