"""palmid: private-by-construction palm identification.

Public names only; importing palmid loads no model and touches no file.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("palmid")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
