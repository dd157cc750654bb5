"""Exceptions raised by annealq, kept in one module so callers can catch them, and
:func:`first_line`, which turns any exception into the one-line reason annealq's messages
quote.

Example:
    >>> first_line(OSError("disk full\\nerrno 28")), first_line(KeyError())
    ('disk full', 'KeyError')
"""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class AnnealqError(Exception):
    """Base class of annealq's own errors."""


class SolverUnavailableError(AnnealqError, RuntimeError):
    """A solver was asked for but cannot run here (no token, package missing, ...)."""


class ProblemTooLargeError(AnnealqError, ValueError):
    """A problem exceeds what the chosen solver can handle (size named in the message)."""


class DatasetNotFoundError(AnnealqError, FileNotFoundError):
    """A dataset's files are not in the data folder and cannot be downloaded here."""


class TokenRejectedError(SolverUnavailableError):
    """Leap refused the configured D-Wave API token (HTTP 401); never falls back."""


class CacheError(AnnealqError, ValueError):
    """The cache file cannot be used (damaged, locked, unreadable, a folder, ...); the
    message names the file and what to do."""


class ClusterError(AnnealqError, ConnectionError):
    """Worker processes or a Dask cluster could not be started, reached or kept (the cache
    keeps what was solved; a rerun resumes from it)."""


class ExportError(AnnealqError, ValueError):
    """A model cannot be exported (a module with no ONNX form, integers outside the storage
    type, the onnx package missing); the message names what."""
