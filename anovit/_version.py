"""The package version, in one place (pyproject.toml reads it; run files and exports record it)."""

__version__ = "0.1.0"
