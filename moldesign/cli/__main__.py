"""`python -m moldesign.cli ...` (what torchrun runs: torchrun -m moldesign.cli train ...)."""
from . import main

if __name__ == "__main__":
    main()
