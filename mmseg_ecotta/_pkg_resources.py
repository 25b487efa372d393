"""A minimal ``pkg_resources`` for setuptools >= 81, which removed it.

Only what mmengine 0.10.7 calls is provided (``get_distribution``,
``DistributionNotFound`` and the distribution's ``location``,
``has_metadata``, ``get_metadata``, ``version``), backed by
:mod:`importlib.metadata`. Registered by :mod:`mmseg_ecotta.compat` only
when the real module cannot be imported.
"""
import importlib.metadata as metadata


class DistributionNotFound(Exception):
    """Raised when a distribution is not installed."""


class _Distribution:

    def __init__(self, dist: metadata.Distribution) -> None:
        self._dist = dist
        self.project_name = dist.metadata['Name']
        self.version = dist.version
        # The folder holding the package, as pkg_resources reports it.
        self.location = str(dist.locate_file(''))

    def has_metadata(self, name: str) -> bool:
        return self._dist.read_text(name) is not None

    def get_metadata(self, name: str) -> str:
        return self._dist.read_text(name) or ''


def get_distribution(name: str) -> _Distribution:
    """Return the installed distribution called ``name``."""
    try:
        return _Distribution(metadata.distribution(name))
    except metadata.PackageNotFoundError as e:
        raise DistributionNotFound(name) from e
