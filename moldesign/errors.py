"""Errors and warnings the design commands share (the CLI and the web app turn them into one line)."""


class DesignInputError(ValueError):
    """A design argument the user must fix (the message is one line naming the value)."""


class DesignWarning(UserWarning):
    """Something the user should know that does not stop the run (printed as `warning: …` by the CLI)."""


class NothingValid(RuntimeError):
    """Decoding ran but produced no valid molecule within the attempt budget."""
