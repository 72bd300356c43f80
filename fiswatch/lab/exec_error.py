"""Why `fiswatch lab exec` cannot run COMMAND, and its own exit codes.

Its own module so that lab/exec.py (running COMMAND) and lab/exec_aws.py (the local AWS side
it starts) can both raise it without importing each other.
"""

EXIT_CANNOT, EXIT_NOEXEC, EXIT_NOTFOUND = 125, 126, 127  # as env(1) and timeout(1): lab exec's own


class ExecError(Exception):
    """Why `lab exec` cannot run COMMAND: one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_CANNOT) -> None:
        super().__init__(message)
        self.code = code
