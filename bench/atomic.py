"""Moved to `disentbench.atomic` (the ground floor every layer imports); this path keeps working."""

from disentbench.atomic import NEW_FILE_MODE, atomic_path, write_json, write_text  # noqa: F401
