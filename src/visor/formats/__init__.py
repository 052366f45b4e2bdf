"""Dataset formats: each module turns a dataset's files into plain records."""

from visor.formats.detect import FORMATS, detect_format, read_dataset
from visor.formats.records import (
    CategoryTable,
    LabelColumns,
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    Skipped,
    SourceInfo,
)

__all__ = [
    "FORMATS",
    "CategoryTable",
    "LabelColumns",
    "LabelRecord",
    "Listing",
    "Record",
    "SampleRecord",
    "Skipped",
    "SourceInfo",
    "detect_format",
    "read_dataset",
]
