"""Encoding and decoding with a trained bundle: conditions, latents, greedy/temperature sampling.

Higher-level design operations (design/: generate around a seed, interpolate) build on these.
All functions take a checkpoint.Bundle and return plain Python / numpy values.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..config import PROPERTIES
from ..model.checkpoint import Bundle


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def model_device(bundle: Bundle) -> torch.device:
    return next(bundle.model.parameters()).device


NEAREST_FRACTION = 0.05  # of the stored training sample: the rows unset properties come from, given some


def draw_conditions(bundle: Bundle, n: int, rng: np.random.Generator,
                    given: Mapping[str, float] | None = None) -> np.ndarray:
    """(n, P) raw property vectors drawn from the training distribution stored in the checkpoint
    (rows of a random training sample, so HBD/HBA stay integers and correlations are kept).

    `given` {property: value}: those columns take the value, and the other properties come from
    the training rows nearest to it (distance in training-std units over the given properties;
    the nearest NEAREST_FRACTION of the sample, at least 20 rows). So a requested LogP of 6 comes
    with the MW and TPSA that molecules of LogP 6 have instead of a random molecule's, a condition
    the decoder has seen: achieved LogP then sits closer to the request (model card, session 6)."""
    sample = np.asarray(bundle.property_stats["sample"], dtype=np.float64)  # (S, P)
    given = dict(given or {})
    if given:
        cols = [PROPERTIES.index(k) for k in given]
        target = np.array([given[k] for k in given], dtype=np.float64)  # (G,)
        dist = np.linalg.norm((sample[:, cols] - target) / (sample[:, cols].std(0) + 1e-9), axis=1)  # (S,)
        sample = sample[np.argsort(dist, kind="stable")[: max(20, int(NEAREST_FRACTION * len(sample)))]]
    rows = sample[rng.integers(0, len(sample), size=n)]  # (n, P), a copy
    for k, v in given.items():
        rows[:, PROPERTIES.index(k)] = v
    return rows


def scale(bundle: Bundle, raw: np.ndarray) -> torch.Tensor:
    """Raw (n, P) properties → scaled float32 tensor on the model's device."""
    return torch.from_numpy(bundle.scaler.transform(raw)).to(model_device(bundle))


def encodable(bundle: Bundle, smiles: str) -> bool:
    """True when the model's vocabulary and max_len can take this (canonical) SMILES."""
    try:
        bundle.vocab.encode(smiles, max_len=bundle.config.max_len)
        return True
    except (ValueError, KeyError):
        return False


def encode_ids(bundle: Bundle, smiles: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """Token ids (n, L) for canonical SMILES; raises on unknown tokens / too long (message names it)."""
    seqs = [bundle.vocab.encode(s, max_len=bundle.config.max_len) for s in smiles]
    L = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), L, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids.to(model_device(bundle)), [len(s) for s in seqs]


@torch.no_grad()
def encode(bundle: Bundle, smiles: Sequence[str], props: np.ndarray | None = None,
           batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """μ and log σ² (n, Z) of canonical SMILES, conditioned on their RDKit properties (or `props`)."""
    if props is None:
        from ..chem import properties_array

        props = properties_array(smiles)
    props = np.asarray(props, dtype=np.float64)
    mus, logvars = [], []
    bundle.model.eval()
    for i in range(0, len(smiles), batch_size):
        ids, _ = encode_ids(bundle, smiles[i : i + batch_size])
        mu, logvar = bundle.model.encode(ids, scale(bundle, props[i : i + batch_size]))
        mus.append(mu.cpu().numpy())
        logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def grammar_for(bundle: Bundle):
    """The SMILES grammar/valence mask for this bundle's vocabulary (built once; its mask cache
    then serves every later decode)."""
    from .grammar import Grammar

    key = tuple(bundle.vocab.tokens)
    g = _GRAMMARS.get(key)
    if g is None:
        g = _GRAMMARS[key] = Grammar(list(key))
    return g


_GRAMMARS: dict[tuple, object] = {}


# Beam width for greedy rows that backjumping leaves unfinished (sampling.decode): on 2,000 prior
# latents of the shipped model, 123 such rows; beam 3 / 5 / 10 finish 111 / 116 / 121 of them, none
# starting with a token that starts < 0.1% of ZINC SMILES, in 3.4 / 4.8 / 9.7 s beside the 11 s of
# the greedy pass (runs/s8/beamrescue.py); session 9's beam (early stop, shared parse states): the
# 260 such rows of 5,000 latents in 3.96 s, 10.6 s before (runs/s9/beamstop.py)
RESCUE_BEAM = 5


MAX_BEAM = 100
"""Widest beam decode accepts: beam 5 gains +0.06 exact reconstruction over greedy, and each width costs
about its multiple of a greedy decode's time and memory (beam 1,000,000 would run for days)."""
MAX_LATENT_ABS = 1e3
"""Largest |z| decode accepts. The prior is N(0, I): trained decoders never saw |z| beyond ~10, and
1e30 overflows to NaN logits, which torch's sampler refuses with a traceback."""


def check_decode_args(bundle: Bundle, z, props, temperature: float, beam: int) -> None:
    """Refuse arguments that cannot be decoded, in one line naming the value (DesignInputError)."""
    from ..errors import DesignInputError

    arr = z.detach().cpu().numpy() if torch.is_tensor(z) else np.asarray(z, dtype=np.float64)
    Z = bundle.config.latent_dim
    if arr.ndim != 2 or arr.shape[1] != Z:
        raise DesignInputError(f"latents must have shape (n, {Z}), got {tuple(arr.shape)}")
    if not np.isfinite(arr).all() or (arr.size and np.abs(arr).max() > MAX_LATENT_ABS):
        raise DesignInputError(f"latents must be finite numbers within ±{MAX_LATENT_ABS:g} (the prior is N(0, I)); "
                               f"got values up to {np.nanmax(np.abs(arr)) if arr.size else 0:g}")
    p = np.asarray(props, dtype=np.float64)
    if p.shape != (len(arr), len(PROPERTIES)) or not np.isfinite(p).all():  # same message for both problems
        raise DesignInputError(f"conditions must be finite numbers of shape ({len(arr)}, {len(PROPERTIES)}), "
                               f"got shape {p.shape}")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature >= 0):
        raise DesignInputError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not isinstance(beam, (int, np.integer)) or isinstance(beam, bool) or not 0 <= beam <= MAX_BEAM:
        raise DesignInputError(f"beam width must be an integer from 0 to {MAX_BEAM}, got {beam!r}")


@torch.no_grad()
def decode(bundle: Bundle, z: np.ndarray | torch.Tensor, props: np.ndarray, temperature: float = 0.0,
           top_k: int = 0, batch_size: int = 1000, generator: torch.Generator | None = None,
           constrained: bool = True, beam: int = 0, backtrack: int | None = None,
           first_token_floor: float | None = None, rescue_beam: int | None = None) -> list[str]:
    """Decode latents (n, Z) under raw conditions (n, P) to strings (not validated).

    temperature 0 = greedy (deterministic); > 0 samples with `generator` for reproducibility.
    `beam` K > 1: beam search of width K, the most likely finished string per row (temperature
    ignored). `constrained` (default): every step masked by the SMILES grammar and valence rules
    (moldesign.grammar); a row that hits a dead end or max_len keeps its unfinished prefix, which
    does not parse. `backtrack` D > 0 (constrained, greedy or sampling): a row that reaches a
    dead end jumps back (1, 2, 4, … up to D tokens; one the length budget cornered, the whole D from
    its second jump on) and decodes on from there — greedy with the token it had forbidden (a row
    that would have to restart with a first token the model gives < `first_token_floor`, default
    decoding.FIRST_TOKEN_FLOOR, is reported a dead end instead), sampling with a fresh draw
    (decoding.sample). A greedy row still unfinished then takes the best finished string of a
    beam search of width `rescue_beam` (default RESCUE_BEAM; 0 off; decoding.rescue_dead_ends).
    `backtrack` default (None): on for greedy decoding (temperature 0), as deep as the
    whole prefix, since a greedy decode is the answer for that latent (a seed, an
    interpolation, an optimizer's point; T = 0, 5,000 prior latents of the shipped ZINC model:
    validity 0.830 → 0.996 with the beam rescue, session 8); off for sampling, by measurement
    (bench/decoding_bench.py, the same 5,000 latents at T = 1, batch 1,000, median of 3 rounds,
    session 9, two runs): the mask alone gives 0.772 valid at 1.8–1.9× the time of unconstrained
    decoding, backjumping 0.998 at 3.1–3.5×, i.e. fewer valid molecules a second (163 vs 218–236), for a Fréchet
    ChemNet distance to ZINC test on equal numbers of valid molecules a little closer to the data
    (5.13 vs 5.52; unconstrained, whose invalid half is simply dropped, 4.66); at T = 0.6
    (`generate --like`) it costs 2.1–2.6× the mask's time per decode (2,000 latents, session 8).
    All latents go through one `decoding.sample` call with `batch_size` slots (continuous
    batching). See moldesign.decoding.
    """
    from .search import beam_best, rescue_dead_ends, sample

    check_decode_args(bundle, z, props, temperature, beam)
    if len(z) == 0:
        return []
    device = model_device(bundle)
    z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not torch.is_tensor(z) else z, device=device)
    cond = scale(bundle, np.asarray(props, dtype=np.float64))
    bundle.model.eval()
    grammar = grammar_for(bundle) if constrained else None
    dec, L = bundle.model.decoder, bundle.config.max_len
    if backtrack is None:
        backtrack = L if temperature <= 0 else 0
    z = z.float()
    if beam and beam > 1:
        rows = [ids for ids, _, _ in beam_best(dec, z, cond, L, beam, grammar, batch_size)]
    else:  # batch_size rows at a time, a finished row's slot going to the next (continuous batching)
        d = sample(dec, z, cond, L, temperature, top_k, grammar, generator, backtrack=backtrack,
                   first_token_floor=first_token_floor, batch_size=batch_size)
        if temperature <= 0 and grammar is not None:
            rescue_dead_ends(dec, z, cond, L, d, RESCUE_BEAM if rescue_beam is None else rescue_beam, grammar,
                             batch_size=batch_size)
        rows = d.ids
    return [bundle.vocab.decode(row) for row in rows]


def sample_prior(bundle: Bundle, n: int, seed: int = 0, temperature: float = 1.0,
                 props: np.ndarray | None = None, batch_size: int = 1000,
                 prior: str = "auto", constrained: bool = True) -> tuple[list[str], np.ndarray]:
    """n strings decoded from z drawn from the prior (prior.draw_latents: the checkpoint's GMM when
    it has one, else N(0, I)) with conditions from the training distribution (or `props`, shape
    (n, P) or (P,)). Returns (strings, raw conditions (n, P)). `constrained`: grammar mask (default on)."""
    from ..model.prior import draw_latents

    rng = np.random.default_rng(seed)
    if props is None:
        props = draw_conditions(bundle, n, rng)
    props = np.broadcast_to(np.asarray(props, dtype=np.float64), (n, len(PROPERTIES))).copy()
    z = draw_latents(bundle, n, rng, prior)
    gen = torch.Generator(device=model_device(bundle)).manual_seed(seed)
    return decode(bundle, z, props, temperature, batch_size=batch_size, generator=gen,
                  constrained=constrained), props


def reconstruct(bundle: Bundle, smiles: Sequence[str], batch_size: int = 512, constrained: bool = True,
                beam: int = 0, props: np.ndarray | None = None) -> list[str]:
    """Decode of μ for each canonical SMILES, greedy or beam search of width `beam` (exact-match
    reconstruction uses this), under the molecules' RDKit properties (or `props` (n, P), e.g.
    from a training pack)."""
    if props is None:
        from ..chem import properties_array

        props = properties_array(smiles)
    mu, _ = encode(bundle, smiles, props, batch_size)
    return decode(bundle, mu, props, temperature=0.0, batch_size=batch_size, constrained=constrained, beam=beam)
