"""What decoding an input may cost: limits against decompression bombs.

Inputs that expand when decoded (LAZ point clouds, PNG and JPEG textures inside GLB, glTF and
OBJ models) are checked against :class:`InputLimits` from their headers, before anything is
decoded, so a file of a few kilobytes that claims billions of points or a texture of 30,000 x
30,000 pixels fails at once with a message naming the limit. Archives (ZIP, KMZ, gzip) are not
accepted at all (:mod:`tiles.readers.sniff` refuses them by their first bytes), so nothing is
ever unpacked.

The limits follow the memory the conversion may use: :meth:`InputLimits.of_this_process` reads
the process's address-space limit (``RLIMIT_AS``, which the service's conversion child sets from
its memory setting), and :meth:`InputLimits.for_memory` scales the texture limits down to it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The largest texture accepted, in pixels: 8192 x 8192 (what GPUs of headsets and phones load).
MAX_TEXTURE_PIXELS = 8192 * 8192
#: All textures of one model together, in pixels.
MAX_TOTAL_TEXTURE_PIXELS = 4 * MAX_TEXTURE_PIXELS
#: Decoded bytes a texture pixel may cost while a model is read (RGBA, plus the copies the
#: readers make), as a share of the memory limit: textures get a quarter of it.
BYTES_PER_TEXTURE_PIXEL = 16
#: Points per byte of compressed point data that a LAZ file can hold at most. LASzip packs
#: a cloud of identical points into about 1/150 byte a point; real scans need several bytes a
#: point. A header that claims more than this is damaged or hostile.
MAX_LAZ_POINTS_PER_BYTE = 256
#: Points of one point cloud: a billion (an AHN tile of 1 x 1.25 km has a few hundred
#: million), so that a small file cannot claim a conversion of many hours.
MAX_POINTS = 1_000_000_000


@dataclass(frozen=True)
class InputLimits:
    """Limits on decoding inputs.

    ``max_texture_pixels``: one texture (width x height); ``max_total_texture_pixels``: all
    textures of one model; ``max_laz_points_per_byte``: the points a LAZ header may claim per
    byte of compressed point data (an uncompressed LAS must hold every point it claims);
    ``max_points``: the points one LAS/LAZ header may claim at all;
    ``memory_bytes``: the memory the conversion may use (None: not limited), which also bounds
    py3dtiles' point cache.
    """

    max_texture_pixels: int = MAX_TEXTURE_PIXELS
    max_total_texture_pixels: int = MAX_TOTAL_TEXTURE_PIXELS
    max_laz_points_per_byte: float = MAX_LAZ_POINTS_PER_BYTE
    max_points: int = MAX_POINTS
    memory_bytes: int | None = None

    @classmethod
    def for_memory(cls, memory_bytes: int | None) -> InputLimits:
        """The default limits, with the texture limits lowered to fit ``memory_bytes`` (None:
        the defaults as they are)."""
        if memory_bytes is None:
            return cls()
        budget = max(memory_bytes // BYTES_PER_TEXTURE_PIXEL, 1)
        return cls(
            max_texture_pixels=min(MAX_TEXTURE_PIXELS, budget),
            max_total_texture_pixels=min(MAX_TOTAL_TEXTURE_PIXELS, budget),
            memory_bytes=memory_bytes,
        )

    @classmethod
    def of_this_process(cls) -> InputLimits:
        """:meth:`for_memory` of this process's address-space limit, if it has one."""
        try:
            import resource
        except ImportError:  # not a POSIX system
            return cls()
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        return cls.for_memory(None if soft == resource.RLIM_INFINITY else soft)

    @property
    def point_cache_mib(self) -> int | None:
        """py3dtiles' cache of points in memory (MiB): a tenth of the memory limit, as py3dtiles
        takes a tenth of the machine's memory when it is not told (None: its default)."""
        if self.memory_bytes is None:
            return None
        return max(self.memory_bytes // (10 * 1024 * 1024), 16)
