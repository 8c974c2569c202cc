"""The tool version, recorded in every report (bump it with pyproject.toml)."""
__version__ = "0.1.0"
