"""Encoding and decoding with a trained bundle: conditions, latents, greedy/temperature sampling.

Higher-level design operations (generate around a seed, interpolate) build on these.
All functions take a checkpoint.Bundle and return plain Python / numpy values.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .checkpoint import Bundle
from .config import DEFAULT_RADIUS, PROPERTIES  # noqa: F401  (DEFAULT_RADIUS: re-exported for the design commands)


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
        from .chem import properties_array

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
    from .decoding import beam_best, rescue_dead_ends, sample

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
    from .prior import draw_latents

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
        from .chem import properties_array

        props = properties_array(smiles)
    mu, _ = encode(bundle, smiles, props, batch_size)
    return decode(bundle, mu, props, temperature=0.0, batch_size=batch_size, constrained=constrained, beam=beam)


# ------------------------------------------------------------------ design operations
# Used by the design commands (generate / interpolate / optimize) and the Python API.


class DesignInputError(ValueError):
    """A design argument the user must fix (the message is one line naming the value)."""


class DesignWarning(UserWarning):
    """Something the user should know that does not stop the run (printed as `warning: …` by the CLI)."""


class NothingValid(RuntimeError):
    """Decoding ran but produced no valid molecule within the attempt budget."""


class Seed:
    """A user molecule prepared for this model: its label, the non-isomeric canonical SMILES the
    model can encode, the RDKit Mol and its five raw properties (P,)."""

    def __init__(self, label: str, smiles: str, mol, props: np.ndarray, notes: list[str] | None = None):
        self.label, self.smiles, self.mol, self.props = label, smiles, mol, props
        self.notes = notes or []  # standardization / domain remarks, shown as warnings

    def __repr__(self) -> str:
        return f"Seed({self.label!r}, {self.smiles!r})"


def prepare_molecule(bundle: Bundle, text: str) -> Seed:
    """A name or SMILES → Seed the model can encode.

    The seed takes the same standard form as the training molecules (chem.standardize_mol: largest
    fragment, neutralized, stereo removed; Tamiflu's three stereocentres become plain atoms).
    `Seed.notes` lists what changed and where the seed lies outside the model's domain (training
    property ranges): the design API turns them into one-line warnings. Raises UnknownMolecule /
    InvalidSmiles for text that is neither a name nor a SMILES, and DesignInputError naming the
    molecule when its tokens are outside the vocabulary or it is longer than `config.max_len`.
    """
    from rdkit import Chem

    from .chem import mol_from_smiles, mol_properties, standardize_mol
    from .known_molecules import resolve_molecule
    from .tokenizer import TokenizeError, UnknownTokenError

    label, smiles = resolve_molecule(text)
    mol = mol_from_smiles(smiles)
    flat = Chem.MolToSmiles(standardize_mol(mol), isomericSmiles=False)
    name = label if label == flat else f"{label} ({flat})"
    notes = []
    as_given = Chem.MolToSmiles(mol, isomericSmiles=False)
    if as_given != flat:
        notes.append(f"{label} standardized to {flat} (largest fragment, neutralized)")
    if Chem.MolToSmiles(mol) != as_given:
        notes.append(f"{label}: stereochemistry dropped (the model has no stereo tokens)")
    try:
        bundle.vocab.encode(flat, max_len=bundle.config.max_len)
    except (UnknownTokenError, TokenizeError) as e:
        detail = str(e).split(": ", 1)[-1]
        raise DesignInputError(f"{name} cannot be encoded by this model: tokens not in its vocabulary: {detail}") from None
    except ValueError:
        n = len(bundle.vocab.encode(flat))
        raise DesignInputError(f"{name} is too long for this model: {n} tokens with <bos>/<eos>, "
                               f"max_len is {bundle.config.max_len}") from None
    mol = Chem.MolFromSmiles(flat)
    props = np.array([mol_properties(mol)[k] for k in PROPERTIES], dtype=np.float64)
    stats = bundle.property_stats
    if "min" in stats:
        out = [f"{k} {v:.4g} not in [{lo:.4g}, {hi:.4g}]" for k, v, lo, hi in zip(PROPERTIES, props, stats["min"], stats["max"])
               if not lo <= v <= hi]
        if out:
            notes.append(f"{label} lies outside the model's training ranges ({'; '.join(out)}); expect weaker results")
    seed = Seed(label, flat, mol, props)
    seed.notes = notes
    return seed


def sample_around(mu: np.ndarray, n: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """n latents z = μ + radius·ε, ε ~ N(0, I): (n, Z) float32.

    `radius` is in units of the prior's standard deviation per dimension (the prior is N(0, I)),
    so a sample lies at distance ≈ radius·√Z from μ; radius 0 returns μ itself n times.
    Gómez-Bombarelli et al. sampled around aspirin the same way (Gaussian noise of growing size).
    """
    mu = np.asarray(mu, dtype=np.float32).reshape(1, -1)  # (1, Z)
    return (mu + radius * rng.standard_normal((n, mu.shape[1]))).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation between latents a, b (Z,) at `alphas` (K,) → (K, Z).

    Moves along the great circle through a and b (norm interpolated linearly), which keeps points
    at the radius where the prior N(0, I) puts its mass instead of cutting through the low-norm
    centre as a straight line does. Falls back to linear when a and b are (anti)parallel.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    alphas = np.asarray(alphas, np.float64)[:, None]  # (K, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-8 or nb < 1e-8:
        return ((1 - alphas) * a + alphas * b).astype(np.float32)
    ua, ub = a / na, b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6 or np.pi - omega < 1e-6:
        return ((1 - alphas) * a + alphas * b).astype(np.float32)
    dirs = (np.sin((1 - alphas) * omega) * ua + np.sin(alphas * omega) * ub) / np.sin(omega)  # (K, Z), unit
    norms = (1 - alphas) * na + alphas * nb  # (K, 1)
    return (dirs * norms).astype(np.float32)


def interpolate_latents(a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp") -> tuple[np.ndarray, np.ndarray]:
    """`steps` points from a to b inclusive: (alphas (K,), z (K, Z))."""
    if steps < 2:
        raise DesignInputError(f"steps must be at least 2 (both ends), got {steps}")
    alphas = np.linspace(0.0, 1.0, steps)
    if method == "linear":
        z = (1 - alphas[:, None]) * np.asarray(a, np.float64) + alphas[:, None] * np.asarray(b, np.float64)
        return alphas, z.astype(np.float32)
    if method == "slerp":
        return alphas, slerp(a, b, alphas)
    raise DesignInputError(f"unknown interpolation method {method!r}; choose slerp or linear")


def canonical_mols(strings: Sequence[str]) -> tuple[list[str | None], list]:
    """Validate decoded strings with RDKit: (canonical non-isomeric SMILES or None, Mol or None).
    A parse that yields no atoms (the empty string) counts as invalid, and so does one whose
    canonical SMILES RDKit cannot read back (rare charged aromatic systems, e.g.
    `...c(=CCC=[n+]3c(=O)c[n+]3=O)...`, parse but fail to kekulize once written out; their scores
    then raise inside RDKit's own QED). The Mol returned is the canonical SMILES' parse."""
    from rdkit import Chem

    from .chem import quiet_rdkit

    canon: list[str | None] = []
    mols: list = []
    with quiet_rdkit():
        for s in strings:
            mol = Chem.MolFromSmiles(s) if s else None
            if mol is None or mol.GetNumAtoms() == 0:
                canon.append(None)
                mols.append(None)
            else:
                c = Chem.MolToSmiles(mol, isomericSmiles=False)
                mol = Chem.MolFromSmiles(c)  # the round trip: what is reported must parse
                canon.append(c if mol is not None else None)
                mols.append(mol)
    return canon, mols


PROPERTY_LIMITS = {  # (lowest allowed, inclusive?) per property a user may request or target
    "mw": (0.0, False), "tpsa": (0.0, False), "hbd": (0.0, True), "hba": (0.0, True),
    "qed": (0.0, True), "sa": (1.0, True),
}
UPPER_LIMITS = {"qed": 1.0, "sa": 10.0}


def check_property_value(name: str, value, flag: str | None = None) -> float:
    """Validate a requested property value; return it as float or raise DesignInputError naming it.

    NaN/inf are rejected; HBD/HBA must be non-negative integers; MW and TPSA positive; QED in
    [0, 1]; SA in [1, 10]; LogP may be any finite number (negative LogP is common).
    """
    from .chem import INTEGER_PROPERTIES

    flag = flag or f"--{name}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DesignInputError(f"{flag} must be a number, got {value!r}") from None
    if not np.isfinite(x):
        raise DesignInputError(f"{flag} must be a finite number, got {value!r}")
    if name in INTEGER_PROPERTIES and (x < 0 or not x.is_integer()):
        raise DesignInputError(f"{flag} must be a non-negative integer, got {value!r}")
    if name in PROPERTY_LIMITS:
        lo, inclusive = PROPERTY_LIMITS[name]
        if x < lo or (x == lo and not inclusive):
            raise DesignInputError(f"{flag} must be {'>=' if inclusive else '>'} {lo:g}, got {value!r}")
    if name in UPPER_LIMITS and x > UPPER_LIMITS[name]:
        raise DesignInputError(f"{flag} must be <= {UPPER_LIMITS[name]:g}, got {value!r}")
    return x


def training_range_warning(bundle: Bundle, name: str, value: float, flag: str | None = None) -> str | None:
    """A warning line when `value` lies outside the training set's [min, max] of `name`, else None."""
    stats = bundle.property_stats
    if name not in PROPERTIES or "min" not in stats:
        return None
    j = PROPERTIES.index(name)
    lo, hi = stats["min"][j], stats["max"][j]
    if lo <= value <= hi:
        return None
    return (f"{flag or '--' + name} {value:g} is outside the training range [{lo:.4g}, {hi:.4g}]; "
            f"the decoder is extrapolating and may ignore it")
