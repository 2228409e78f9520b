"""Exceptions with messages a microscopist understands: each names the file and the problem."""

from __future__ import annotations


class IsoviewError(ValueError):
    """Base class of every error raised for bad input or a failed processing step."""


class LayoutError(IsoviewError):
    """The folder is not an IsoView acquisition, or its layout cannot be recognised."""


class MetadataError(IsoviewError):
    """A channel XML is missing, malformed, or disagrees with the data."""


class StackSizeError(IsoviewError):
    """A raw ``.stack`` file's size does not match the dimensions its XML declares."""


class StackContentError(IsoviewError):
    """A raw stack has the right size but holds no image (every pixel zero)."""


class FormatError(IsoviewError):
    """A volume file cannot be read or written in the requested format."""
