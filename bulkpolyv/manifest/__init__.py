"""The manifest: its model, its loader (YAML with positions, ${VAR}, CSV) and its errors."""

from bulkpolyv.manifest.loader import CSV_COLUMNS, load_manifest
from bulkpolyv.manifest.model import (
    DesiredAccount,
    DesiredChannel,
    DesiredMonitor,
    Limits,
    Manifest,
    ManifestSpec,
)
from bulkpolyv.manifest.problems import Location, ManifestError, Problem

__all__ = [
    "CSV_COLUMNS",
    "DesiredAccount",
    "DesiredChannel",
    "DesiredMonitor",
    "Limits",
    "Location",
    "Manifest",
    "ManifestError",
    "ManifestSpec",
    "Problem",
    "load_manifest",
]
