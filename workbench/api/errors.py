"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the HTTP status that fits.

    raise ApiError(404, "There is no model 'x': GET /v1/models lists them.", code="model_not_found", param="model")
    ApiError.from_workbench(exc)        # a WorkbenchError from the engine: 400 and its sentence, made public

Every sentence a client reads goes through `public`, the gate's one funnel (`workbench.gate.sentence`) with the
API's keys masked one by one: secrets masked, URLs and server paths hidden, one line, capped (a sentence may quote
what the client sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.errors import WorkbenchError

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    421: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


def public(sentence: str, keys: Sequence[str] = ()) -> str:
    """A sentence as a client may read it (see the module docstring); `keys` are masked too (the API's keys are
    one environment variable, which the funnel masks only whole)."""
    from workbench.gate.sentence import WINDOW, public_sentence
    from workbench.safety.redact import redact

    return public_sentence(redact(sentence[:WINDOW], keys) if keys else sentence)


class ApiError(Exception):
    """One refused request: status, one sentence, and OpenAI's `type`, `param` and `code`."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    @classmethod
    def from_workbench(cls, exc: WorkbenchError, status: int = 400, code: str | None = None) -> ApiError:
        return cls(status, str(exc), code=code)

    def body(self, keys: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON body: OpenAI's error object (`keys` masked, see `public`)."""
        return {
            "error": {
                "message": public(self.message, keys),
                "type": TYPES.get(self.status, "invalid_request_error"),
                "param": self.param,
                "code": self.code,
            }
        }
