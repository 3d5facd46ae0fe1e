"""Error types shared by the library: every user-facing problem says where and what to fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One problem in one file, anchored at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlaygroundError(Exception):
    """Base class for errors the playground reports to users."""


class ValidationError(PlaygroundError):
    """A definition file (persona, role model, trait, policy) is invalid."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class NotFoundError(PlaygroundError):
    """A named persona, role model, trait or model does not exist."""


class ModelError(PlaygroundError):
    """The model could not be located or loaded."""
