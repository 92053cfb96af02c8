"""Errors and warnings shared across stages (the CLI and the web app turn each into one line).

Here, at the bottom of the package, so that a module raising one never imports the stage that
defines the operation (the surrogate raising CheckpointError would otherwise import checkpoint,
which imports the surrogate)."""


class DesignInputError(ValueError):
    """A design argument the user must fix (the message is one line naming the value)."""


class DesignWarning(UserWarning):
    """Something the user should know that does not stop the run (printed as `warning: …` by the CLI)."""


class NothingValid(RuntimeError):
    """Decoding ran but produced no valid molecule within the attempt budget."""


class CheckpointError(ValueError):
    """A file that is not a loadable moldesign checkpoint (message is one line)."""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class RunFailure(Exception):
    """The command ran but produced nothing usable: one line, exit code 1."""
