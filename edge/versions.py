"""Installed distribution versions, read from package metadata (nothing is imported).

Manifests, benchmark reports and comparisons all record which tools produced their
numbers; they ask here so a distribution that is absent, or installed under another name
(``tensorflow`` vs ``tensorflow-cpu``), is handled one way.
"""

from __future__ import annotations

from importlib import metadata


def version_of(*dists: str) -> str | None:
    """Version of the first of ``dists`` that is installed, else None."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def installed_versions(dists: tuple[str, ...]) -> dict[str, str]:
    """``{dist: version}`` of those of ``dists`` that are installed."""
    found = {d: version_of(d) for d in dists}
    return {d: v for d, v in found.items() if v is not None}
