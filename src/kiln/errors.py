"""The one error root. Every failure a client can see is a KilnError rendered in one place.

Codes and HTTP statuses follow databricks-sdk's `errors` package, which is the contract the
clients parse (`ERROR_CODE_MAPPING` / `STATUS_CODE_MAPPING`).
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "DirectoryNotEmpty",
    "FeatureDisabled",
    "InternalError",
    "InvalidParameterValue",
    "InvalidState",
    "KilnError",
    "MalformedRequest",
    "MaxBlockSizeExceeded",
    "MaxReadSizeExceeded",
    "NotImplementedYet",
    "PermissionDenied",
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "RequestLimitExceeded",
    "RequestTooLarge",
    "ResourceAlreadyExists",
    "ResourceDoesNotExist",
    "Unauthenticated",
]


class KilnError(Exception):
    """A failure with a Databricks error code and the HTTP status it maps to."""

    error_code: str = "INTERNAL_ERROR"
    http_status: int = 500

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code

    def to_body(self) -> dict[str, str]:
        """The wire body every client parses."""
        return {"error_code": self.error_code, "message": self.message}


class BadRequest(KilnError):
    error_code = "BAD_REQUEST"
    http_status = 400


class InvalidParameterValue(BadRequest):
    error_code = "INVALID_PARAMETER_VALUE"


class MalformedRequest(BadRequest):
    error_code = "MALFORMED_REQUEST"


class InvalidState(BadRequest):
    error_code = "INVALID_STATE"


class DirectoryNotEmpty(BadRequest):
    error_code = "DIRECTORY_NOT_EMPTY"


class MaxBlockSizeExceeded(BadRequest):
    error_code = "MAX_BLOCK_SIZE_EXCEEDED"


class MaxReadSizeExceeded(BadRequest):
    error_code = "MAX_READ_SIZE_EXCEEDED"


class RangeNotSatisfiable(KilnError):
    """The requested byte range lies outside the file."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 416


class PreconditionFailed(KilnError):
    """The file changed after the time the client named."""

    error_code = "FAILED_PRECONDITION"
    http_status = 412


class Unauthenticated(KilnError):
    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(KilnError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class ResourceDoesNotExist(KilnError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class FeatureDisabled(KilnError):
    error_code = "FEATURE_DISABLED"
    http_status = 404


class ResourceAlreadyExists(KilnError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class RequestTooLarge(KilnError):
    error_code = "MAX_REQUEST_SIZE_EXCEEDED"
    http_status = 413


class RequestLimitExceeded(KilnError):
    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429


class NotImplementedYet(KilnError):
    error_code = "NOT_IMPLEMENTED"
    http_status = 501


class InternalError(KilnError):
    error_code = "INTERNAL_ERROR"
    http_status = 500
