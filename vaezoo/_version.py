"""The version of vaezoo, read by setuptools and written into every run directory."""
__version__ = "0.1.0"
