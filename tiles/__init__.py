"""The arserver 3D Tiles engine: coordinate reference systems, readers, tiler and writers.

A library: it never imports the service, a web framework, a database or a network client,
never prints and never exits. Errors derive from :class:`tiles.errors.TilesError`.
"""

__version__ = "0.1.0"
