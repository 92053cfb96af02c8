"""From latents to strings: the SMILES/valence grammar, search strategies (greedy, sampling,
beam, backjumping) and encode/decode/prior draws over a checkpoint bundle."""
