"""Exit codes and the two one-line failures every command shares (no imports: any module may use it).

    0  ok                  1  failure (one line on stderr); `verify`: a write is lost      2  bad usage (one line)
    3  incomplete: the run ended, but its record or its output (stdout) could not be written in full;
       the end of the run says what is missing
"""

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_LOST = EXIT_FAIL  # `fiswatch verify`: an acknowledged write is not on the writer


class UsageError(Exception):
    """Bad usage found after parsing: one line, exit 2."""


class CommandError(Exception):
    """A failure to report in one line (exit 1)."""
