"""Moved to `disentbench.choices` (the ground floor every layer imports); this path keeps working."""

from disentbench.choices import (  # noqa: F401
    BACKENDS,
    COMPILE_MODES,
    GRIDS,
    PRECISION_SETTINGS,
    PRECISIONS,
    REPRESENTATIONS,
    SOURCES,
    or_list,
)
