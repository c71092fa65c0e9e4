"""The manifest: its model, its loader (YAML with positions, ${VAR}, CSV) and its errors."""

from bulkpolyv.manifest.csvsource import CSV_CHANNEL_COLUMNS, CSV_COLUMNS
from bulkpolyv.manifest.loader import load_manifest
from bulkpolyv.manifest.model import (
    CALLBACK_KINDS,
    DEFAULT_API_BASE,
    MONITOR_FIELDS,
    DesiredAccount,
    DesiredChannel,
    DesiredMonitor,
    Limits,
    Manifest,
    ManifestSpec,
    yes_no,
)
from bulkpolyv.manifest.problems import Location, ManifestError, Problem

__all__ = [
    "CALLBACK_KINDS",
    "CSV_CHANNEL_COLUMNS",
    "CSV_COLUMNS",
    "DEFAULT_API_BASE",
    "MONITOR_FIELDS",
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
    "yes_no",
]
