"""isoview_core: the pure processing library of isoview (formats, discovery, correction, fusion, simulation).

It never imports typer, rich, yaml, prefect or watchdog (the command line and the service live in `flows`);
everything here works from a notebook.
"""

__version__ = "0.1.0"
