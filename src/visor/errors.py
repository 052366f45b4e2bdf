"""Errors the user can act on.

Every error that reaches a user is a `VisorError`: the CLI prints its message on one line and
exits 1; the HTTP API answers `{"error": {"code", "message"}}` with `status`.
"""

from __future__ import annotations


class VisorError(Exception):
    """Base class: `message` names the file, field or id and says what is wrong."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(VisorError):
    status = 404
    code = "not_found"


class Conflict(VisorError):
    status = 409
    code = "conflict"


class InvalidInput(VisorError):
    status = 422
    code = "invalid_input"


class FormatError(VisorError):
    """An annotation file or image that cannot be read as what it claims to be."""

    status = 422
    code = "format_error"


class SourceError(VisorError):
    """A dataset root or file that cannot be reached, or a path that leaves the root."""

    status = 422
    code = "source_error"


class StoreError(VisorError):
    status = 500
    code = "store_error"


class ModelUnavailable(VisorError):
    status = 422
    code = "model_unavailable"
