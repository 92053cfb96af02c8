"""Run the moldesign CLI from a checkout: `python cli.py generate --like aspirin`."""
from moldesign.cli import app

if __name__ == "__main__":
    app()
