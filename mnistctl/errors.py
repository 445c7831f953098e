"""The one exception type for mistakes a user can fix; `mnistctl` prints it as one line, exit 2."""


class UsageError(Exception):
    """A bad value, file or flag. The message says what is wrong and how to fix it."""

    exit_code = 2


# `mnistctl predict --data.predict_dir`: some image files were unreadable; the CSV holds the others.
SKIPPED_FILES_EXIT_CODE = 3
