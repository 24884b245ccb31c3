"""Errors that end a command with a one-line message and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: a file that is missing, unreadable or inconsistent.

    The message always names the file (when there is one) and the problem, on one line.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


class StageError(Exception):
    """A stage could not run because an earlier stage's output is missing or broken."""
