"""Versions from the installed packages' metadata: this package's (setup.cfg writes it down once)
and others', for manifests and reports."""

from importlib import metadata


def installed_version(distribution):
    """The installed version of ``distribution`` (a name as pip knows it), or ``None``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


#: This package's version; ``0+unknown`` for a checkout on ``sys.path`` that was never installed.
VERSION = installed_version("inception-keras") or "0+unknown"
