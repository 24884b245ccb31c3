"""The errors that end a command with one line on the terminal, and the one helper that makes that line.

Two kinds of failure, never confused:
  - input errors (exit code 2): a file, a value or an impossible combination (InputError, ValueError from the config,
    RunInUseError). They are found before any stage runs, so nothing is written;
  - failures once stages run (exit code 1): StageFailed (a stage raised; its traceback is in RUN/logs/error-<stage>.txt
    and every finished stage stays on disk) and StageError (the run folder's own bookkeeping failed, or an earlier
    stage's output is missing).
An InputError raised inside a stage (e.g. a --depth-file the depth stage cannot read) is still an input error.
"""

from __future__ import annotations

from pathlib import Path


def one_line(e: BaseException | str, limit: int = 300, with_type: bool = False) -> str:
    """An exception (or text) as one line: whitespace collapsed, cut at `limit` characters; the exception's type
    name when there is no message (or always, with_type)."""
    text = " ".join(str(e).split())
    if isinstance(e, BaseException) and (with_type or not text):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputError(Exception):
    """Bad user input: a file that is missing, unreadable or inconsistent.

    The message always names the file (when there is one) and the problem, on one line.
    """

    exit_code = 2

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


class RunInUseError(InputError):
    """Another live landscape4d process holds the run folder."""

    def __init__(self, run_dir: str | Path, pid: int | None):
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(run_dir, f"is in use by {who} (a landscape4d command is running on this run folder; wait "
                                  "for it, or use another -o folder)")


class StageError(Exception):
    """A stage could not run: an earlier stage's output is missing, or the run folder's bookkeeping failed."""

    exit_code = 1


class CorruptArtifactError(StageError):
    """A file an earlier stage wrote is unreadable (truncated, corrupt) or inconsistent with its neighbours.
    `rerun` is the command that makes it again."""

    def __init__(self, path: str | Path, problem: str, rerun: str | None = None):
        self.path, self.rerun = str(path), rerun
        super().__init__(f"{path}: {' '.join(problem.split())}" + (f"; make it again with `{rerun}`" if rerun else ""))


class StageFailed(Exception):
    """A stage raised. `line` is what the terminal shows; `log` the file with the traceback (None when it could not
    be written); exit code 1, or 2 when the cause was the user's input (an InputError)."""

    def __init__(self, stage: str, line: str, log: Path | None = None, exit_code: int = 1):
        self.stage, self.log, self.exit_code = stage, log, exit_code
        super().__init__(f"{line} (traceback in {log})" if log is not None else line)


class UndeclaredConfigError(RuntimeError):
    """A stage read a config value it does not declare (pipeline.STAGES): its cache key would miss the value."""
