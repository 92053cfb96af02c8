"""moldesign: de novo molecular design with a conditional SMILES VAE trained on MOSES."""
__version__ = "0.1.0"
