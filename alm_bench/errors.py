"""Errors that reach the user as one clear line (exit status 2), never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a config value, a file, an incompatible choice."""


class ConfigError(UserError):
    """A config field holds a value outside what it accepts."""


def one_line(err: BaseException, limit: int | None = None) -> str:
    """'Type: message' on one line (foreign libraries' messages span lines), cut to `limit` characters."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if limit is None else text[:limit]


def require(ok: bool, field: str, expected: str, got: object) -> None:
    """Raise ConfigError naming `field` unless `ok`."""
    if not ok:
        raise ConfigError(f"{field} must be {expected}, got {got!r}")


def require_positive(field: str, value: float) -> None:
    require(isinstance(value, (int, float)) and value > 0, field, "> 0", value)


def require_int(field: str, value: object, minimum: int = 1) -> None:
    """Raise ConfigError naming `field` unless `value` is an integer >= `minimum` (a bool is not a count)."""
    require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum, field,
            f"an integer >= {minimum}", value)
