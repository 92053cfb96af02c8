"""`python -m moldesign.cli ...` (what torchrun runs: torchrun -m moldesign.cli train ...)."""
from . import app

if __name__ == "__main__":
    app()
