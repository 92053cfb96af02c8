"""Fitting: the VAE training loop, randomized SMILES, and the prior (GMM) and latent surrogate
fitted on a trained model's encodings."""
