"""Run the moldesign CLI from a checkout: `python cli.py generate --like aspirin`."""
from moldesign.cli import main

if __name__ == "__main__":
    main()
