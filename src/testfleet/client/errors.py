"""The exceptions the client raises: every failure a caller may want to tell apart."""

from __future__ import annotations

from testfleet.protocol.api import ErrorBody, ErrorDetail


class ClientError(Exception):
    """Base class of everything the testfleet client raises on purpose."""


class HubUnreachable(ClientError):
    """The hub could not be reached (refused, unknown host, timed out, connection lost)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the testfleet hub at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(ClientError):
    """The hub answered with an error status; the fields mirror `ErrorBody`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[ErrorDetail] | None = None,
        server_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors or [])
        self.server_id = server_id
        super().__init__(str(self))

    @classmethod
    def from_body(cls, status: int, body: ErrorBody) -> ApiError:
        """Build from a parsed error body."""
        return cls(status, body.code, body.message, body.errors, body.server_id)

    def __str__(self) -> str:
        lines = [f"{self.message} (HTTP {self.status}, {self.code})"]
        lines += [f"  at {error.location or '/'}: {error.message}" for error in self.errors]
        return "\n".join(lines)


class UnexpectedResponse(ClientError):
    """The server answered with something that is not what the testfleet API promises."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"unexpected answer to {what}: {detail}")
        self.what = what
        self.detail = detail


class WaitTimeout(ClientError, TimeoutError):
    """`wait()` gave up before the job finished."""

    def __init__(self, job_id: int, state: str, timeout: float) -> None:
        super().__init__(f"job {job_id} is still {state} after waiting {timeout:g}s")
        self.job_id = job_id
        self.state = state
        self.timeout = timeout
