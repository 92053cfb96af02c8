"""What the two front ends (cli/ and webapp.py) share about the user's errors.

Kept apart from api.py: the API imports RDKit at once, and `train --data PACK.npz` must give its
one-line errors on a GPU machine without RDKit, where only this list is needed."""
from __future__ import annotations


def user_input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the user's input (option, file, checkpoint) is bad: the CLI exits 2 with one
    line, the web app shows the line. One list for both front ends; RDKit-backed ones only where
    RDKit imports."""
    import gzip
    import zipfile
    import zlib

    from .config import ConfigError
    from .data import DataError
    from .errors import CheckpointError, UserError
    from .model.prior import PriorError
    from .model.tokenizer import TokenizeError, UnknownTokenError

    types = (UserError, CheckpointError, ConfigError, DataError, TokenizeError, UnknownTokenError, PriorError,
             EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile)
    try:  # unreadable input files that a reader did not already turn into a DataError
        import pandas as pd

        types += (pd.errors.ParserError, pd.errors.EmptyDataError)
    except ImportError:  # pragma: no cover
        pass
    try:  # RDKit-backed errors; `train` from a pack runs where RDKit is absent
        from .chem import InvalidSmiles
        from .known_molecules import UnknownMolecule
    except ImportError:
        return types
    return types + (InvalidSmiles, UnknownMolecule)
