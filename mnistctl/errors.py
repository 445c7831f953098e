"""The one exception type for mistakes a user can fix; `mnistctl` prints it as one line, exit 2."""


class UsageError(Exception):
    """A bad value, file or flag. The message says what is wrong and how to fix it."""

    exit_code = 2
