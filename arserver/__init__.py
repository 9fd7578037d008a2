"""arserver: an open backend for location-bound data in AR and VR."""

__version__ = "0.1.0"
