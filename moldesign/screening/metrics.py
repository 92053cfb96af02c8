"""Generation metrics as plain functions over lists of SMILES, with the definitions of MOSES
(Polykovskiy et al., Front. Pharmacol. 2020; code: molsets 0.3.1 `moses/metrics`), plus the
model-specific reconstruction accuracy and conditioning error, and `evaluate`, which runs them all.

Conventions shared by every function (as in MOSES):
* "valid" = RDKit parses the string (empty strings are invalid); generated molecules are compared
  as RDKit canonical SMILES, duplicates kept unless a metric says otherwise.
* Fingerprints for SNN and IntDiv: Morgan radius 2, 1024 bits (MOSES `fingerprint(fp_type=
  'morgan')`), Tanimoto via RDKit's BulkTanimotoSimilarity.
* Functions return None where the value is undefined (nothing valid, fewer than k, empty sets).
"""
from __future__ import annotations

import functools
import hashlib
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from ..chem import PROPERTIES, properties_array
from ..chem import try_mol as parse

MOSES_FP_RADIUS, MOSES_FP_BITS = 2, 1024
FCD_REFERENCE_SIZE = 10_000
"""ChemNet statistics of a reference set use a fixed random subset (numpy default_rng(0), sorted
indices) of this many molecules, because ChemNet on CPU takes about 3 ms per molecule (176k MOSES
test molecules would take ~10 min). FCD values are therefore comparable between moldesign runs,
not digit for digit with published MOSES numbers computed on the whole test set."""


# ------------------------------------------------------------------ molecules and counts
def valid_mols(smiles: Iterable[str]) -> list[Chem.Mol]:
    """RDKit molecules of the entries that parse, in order (invalid ones skipped)."""
    with rdBase.BlockLogs():
        return [m for m in map(parse, smiles) if m is not None]


def canonical_valid(smiles: Iterable[str]) -> list[str]:
    """RDKit canonical SMILES of the valid entries, in order, duplicates kept (MOSES
    `remove_invalid(gen, canonize=True)`)."""
    return [Chem.MolToSmiles(m) for m in valid_mols(smiles)]


def fraction_valid(smiles: Sequence[str]) -> float | None:
    """valid = (number of entries RDKit parses) / (number of entries). None for an empty list."""
    return len(valid_mols(smiles)) / len(smiles) if len(smiles) else None


def fraction_unique(smiles: Sequence[str], k: int | None = None) -> float | None:
    """unique@k = |set(first k valid canonical SMILES)| / k.

    MOSES warns and divides by the number available when there are fewer than k valid molecules;
    we return None instead, so a value labelled @k always means k molecules. k=None: all valid.
    """
    valid = canonical_valid(smiles)
    if k is not None:
        if len(valid) < k:
            return None
        valid = valid[:k]
    return len(set(valid)) / len(valid) if valid else None


def novelty(smiles: Sequence[str], train: Iterable[str]) -> float | None:
    """novelty = |G \\ T| / |G| with G the set of unique valid canonical generated SMILES and T the
    training set as given (MOSES `novelty`; pass canonical SMILES, e.g. the prepared MOSES tables)."""
    gen = set(canonical_valid(smiles))
    if not gen:
        return None
    train = train if isinstance(train, (set, frozenset)) else set(train)
    return len(gen - train) / len(gen)


@functools.lru_cache(maxsize=1)
def _moses_fp_generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=MOSES_FP_RADIUS, fpSize=MOSES_FP_BITS)


def fingerprints(smiles_or_mols: Iterable) -> list:
    """Morgan r=2, 1024-bit fingerprints (ExplicitBitVect) of the valid entries, in order."""
    gen = _moses_fp_generator()
    return [gen.GetFingerprint(m) for m in _as_mols(smiles_or_mols)]


def internal_diversity(smiles: Sequence[str], p: int = 1, per_molecule: bool = True) -> float | None:
    """IntDiv_p over the valid generated molecules G (duplicates kept, self-pairs included).

    per_molecule=True (default; molsets 0.3.1 code, which produced the published MOSES tables):
        IntDiv_p = 1 - (1/|G|) sum_i ( (1/|G|) sum_j T(i, j)^p )^(1/p)
    per_molecule=False (the formula printed in the MOSES paper):
        IntDiv_p = 1 - ( (1/|G|^2) sum_{i, j} T(i, j)^p )^(1/p)
    The two agree for p=1 (IntDiv) and differ slightly for p=2 (IntDiv2).
    """
    fps = fingerprints(smiles)
    if not fps:
        return None
    row_means = np.array([np.mean(np.asarray(DataStructs.BulkTanimotoSimilarity(fp, fps)) ** p) for fp in fps])
    if per_molecule:
        return float(1 - np.mean(row_means ** (1 / p)))
    return float(1 - np.mean(row_means) ** (1 / p))


def snn(smiles: Sequence[str], reference_fps: Sequence) -> float | None:
    """SNN = (1/|G|) sum over valid generated g of max over reference r of Tanimoto(g, r)
    (MOSES SNNMetric; duplicates in G kept). `reference_fps` from `fingerprints(reference)`."""
    fps = fingerprints(smiles)
    if not fps or not len(reference_fps):
        return None
    return float(np.mean([max(DataStructs.BulkTanimotoSimilarity(fp, reference_fps)) for fp in fps]))


def fragment_counts(smiles_or_mols: Iterable) -> Counter:
    """BRICS fragments of every valid molecule, counted over the set: canonical SMILES of the pieces
    of Chem.FragmentOnBRICSBonds (dummy atoms keep their BRICS labels), as MOSES `compute_fragments`."""
    counts: Counter = Counter()
    for mol in _as_mols(smiles_or_mols):
        counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def scaffold_counts(smiles_or_mols: Iterable, min_rings: int = 2) -> Counter:
    """Bemis–Murcko scaffolds (canonical SMILES of MurckoScaffold.GetScaffoldForMol) counted over
    the set; scaffolds with fewer than `min_rings` rings are left out (MOSES default: 2)."""
    counts: Counter = Counter()
    for mol in _as_mols(smiles_or_mols):
        try:
            scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        except (ValueError, RuntimeError):
            continue
        smi = Chem.MolToSmiles(scaffold)
        if smi and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[smi] += 1
    return counts


def cosine_similarity(a: Counter, b: Counter) -> float | None:
    """<a, b> / (|a| |b|) of two count vectors indexed by key (missing = 0); None if either is empty.
    Frag = cosine_similarity(fragment_counts(G), fragment_counts(R)); Scaf likewise with scaffolds."""
    if not a or not b:
        return None
    keys = list(set(a) | set(b))
    va, vb = np.array([a.get(k, 0) for k in keys], float), np.array([b.get(k, 0) for k in keys], float)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def _as_mols(items: Iterable) -> list[Chem.Mol]:
    """Metrics accept SMILES or already parsed molecules (evaluate parses once for all of them)."""
    items = list(items)
    return items if items and isinstance(items[0], Chem.Mol) else valid_mols(items)


# ------------------------------------------------------------------ MOSES filters
@functools.lru_cache(maxsize=1)
def moses_filter_patterns() -> tuple[Chem.Mol, ...]:
    """The MCF and PAINS SMARTS that MOSES filters with: moses/metrics/mcf.csv (with a header) and
    wehi_pains.csv (without) from the molsets 0.3.1 wheel, committed under data/moses_filters/
    (MIT, see data/README.md) so the metric needs no download."""
    from ..data import MOSES_FILTERS_DIR

    mcf = pd.read_csv(MOSES_FILTERS_DIR / "mcf.csv")
    pains = pd.read_csv(MOSES_FILTERS_DIR / "wehi_pains.csv", names=["smarts", "names"])
    return tuple(Chem.MolFromSmarts(s) for s in pd.concat([mcf["smarts"], pains["smarts"]]))


def passes_filters(mol: Chem.Mol, patterns: Sequence[Chem.Mol],
                   allowed: frozenset = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})) -> bool:
    """MOSES `mol_passes_filters`: no ring of 8 or more atoms, no charged atom, only allowed
    elements, and no pattern matching the molecule with explicit hydrogens."""
    if any(len(r) >= 8 for r in mol.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in allowed for a in mol.GetAtoms()):
        return False
    h_mol = Chem.AddHs(mol)
    return not any(h_mol.HasSubstructMatch(p) for p in patterns)


def fraction_passes_filters(smiles: Sequence[str], patterns: Sequence[Chem.Mol] | None = None) -> float | None:
    """Filters = fraction of valid generated molecules (duplicates kept) passing `passes_filters`
    with the MOSES MCF + PAINS patterns (or `patterns`). None if nothing is valid."""
    mols = _as_mols(smiles)
    patterns = moses_filter_patterns() if patterns is None else patterns
    return float(np.mean([passes_filters(m, patterns) for m in mols])) if mols else None


# ------------------------------------------------------------------ FCD (optional `fcd` package)
def fcd_available() -> bool:
    try:
        import fcd  # noqa: F401
    except ImportError:
        return False
    return True


def chemnet_stats(smiles: Sequence[str], device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Mean (512,) and covariance (512, 512) of ChemNet penultimate activations (fcd package)."""
    import fcd

    with warnings.catch_warnings():  # fcd 1.2.2 uses np.row_stack and warns about padding length
        warnings.simplefilter("ignore")
        act = fcd.get_predictions(fcd.load_ref_model(), list(smiles), n_jobs=0, device=device)
    return act.mean(axis=0), np.cov(act.T)


def frechet_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two (mean, covariance) pairs (fcd's
    numerically stable implementation)."""
    import fcd

    with warnings.catch_warnings():  # fcd 1.2.2 passes scipy's deprecated sqrtm(disp=...)
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(fcd.calculate_frechet_distance(mu1=a[0], sigma1=a[1], mu2=b[0], sigma2=b[1]))


def frechet_chemnet_distance(smiles: Sequence[str], reference: tuple[np.ndarray, np.ndarray] | None,
                             device: str = "cpu") -> float | None:
    """FCD = frechet_distance(chemnet_stats(G), reference) with G the valid canonical generated
    SMILES (duplicates kept) and reference = chemnet_stats of the reference set.
    None when `fcd` is not installed, no reference is given or fewer than 2 molecules are valid."""
    gen = canonical_valid(smiles)
    if not fcd_available() or len(gen) < 2 or reference is None:
        return None
    return frechet_distance(chemnet_stats(gen, device), reference)


# ------------------------------------------------------------------ model metrics
def reconstruction_table(bundle, smiles: Sequence[str], batch_size: int = 512, constrained: bool = True,
                         beam: int = 0) -> pd.DataFrame:
    """Decode of mu (greedy, or beam search of width `beam`; grammar mask unless not
    `constrained`) for each input: columns input, canonical (non-isomeric, what the model
    encodes), output, exact (canonical(output) == canonical), error (why a row was not encoded:
    invalid SMILES, unknown token, too long; or why its decode is invalid: "invalid decode: ...").
    Rows keep input order."""
    from ..decoding.sampling import reconstruct

    canon, errors = [], []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = parse(s)
            c = None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=False)
            err = "invalid SMILES" if c is None else ""
            if c is not None:
                try:
                    bundle.vocab.encode(c, max_len=bundle.config.max_len)
                except (ValueError, KeyError) as e:  # unknown token / too long: named in the message
                    err, c = f"not encodable: {e}", None
            canon.append(c)
            errors.append(err)
    ok = [c for c in canon if c is not None]
    decoded = iter(reconstruct(bundle, ok, batch_size, constrained=constrained, beam=beam) if ok else [])
    outputs = [next(decoded) if c is not None else None for c in canon]
    from .screen import explain_invalid

    with rdBase.BlockLogs():
        out_canon = [None if o is None or (m := parse(o)) is None else Chem.MolToSmiles(m, isomericSmiles=False)
                     for o in outputs]
        exact = [c is not None and oc == c for c, oc in zip(canon, out_canon)]
        # an encodable input whose greedy decode RDKit rejects says why, like any invalid row
        errors = [e if c is None or oc is not None else "invalid decode: " + explain_invalid(o)
                  for e, c, o, oc in zip(errors, canon, outputs, out_canon)]
    return pd.DataFrame({"input": list(smiles), "canonical": canon, "output": outputs, "exact": exact,
                         "error": errors})


def conditioning_mae(smiles: Sequence[str], conditions: np.ndarray) -> dict[str, float | None]:
    """cond_mae_<p> = mean over VALID generated molecules i of |p(molecule i) - requested p_i|, with
    p the RDKit property of chem.PROPERTIES and conditions of shape (n, 5) in that order."""
    props = properties_array(list(smiles))
    ok = ~np.isnan(props).any(axis=1)
    err = np.abs(props[ok] - np.asarray(conditions, dtype=np.float64)[ok])
    return {f"cond_mae_{p}": (float(err[:, i].mean()) if ok.any() else None) for i, p in enumerate(PROPERTIES)}


# ------------------------------------------------------------------ reference sets and evaluate
@dataclass
class ReferenceSet:
    """Precomputed statistics of a reference set (MOSES test or test_scaffolds)."""

    smiles: list[str]
    fps: list
    frag: Counter
    scaf: Counter
    fcd: tuple[np.ndarray, np.ndarray] | None


def reference_set(smiles: Sequence[str], cache: str | Path | None = None, with_fcd: bool = True,
                  device: str = "cpu", log: Callable = lambda m: None) -> ReferenceSet:
    """Statistics of a reference set, cached in an .npz when `cache` is given: fingerprints (packed
    bits), fragment and scaffold counts, ChemNet mean/covariance of FCD_REFERENCE_SIZE molecules.
    The cache is keyed by a SHA-1 of the SMILES list and rebuilt when it does not match."""
    smiles = list(smiles)
    digest = hashlib.sha1("\n".join(smiles).encode()).hexdigest()
    cached = _read_cache(cache, digest, smiles)
    if cached is not None and (cached.fcd is not None or not with_fcd or not fcd_available()):
        return cached
    t0 = time.time()
    if cached is None:
        mols = valid_mols(smiles)
        cached = ReferenceSet(smiles, fingerprints(mols), fragment_counts(mols), scaffold_counts(mols), None)
    if with_fcd and fcd_available():
        rng = np.random.default_rng(0)
        subset = sorted(rng.choice(len(smiles), min(len(smiles), FCD_REFERENCE_SIZE), replace=False))
        cached.fcd = chemnet_stats([smiles[i] for i in subset], device)
    log(f"reference statistics of {len(smiles)} molecules computed in {time.time() - t0:.1f} s")
    if cache is not None:
        try:
            _write_cache(cache, digest, cached)
        except OSError as e:  # read-only data folder: the run still works, just uncached
            log(f"could not cache reference statistics in {cache}: {e}")
    return cached


def _read_cache(path, digest: str, smiles: list[str]) -> ReferenceSet | None:
    if path is None or not Path(path).exists():
        return None
    try:
        with np.load(path) as z:
            if str(z["digest"]) != digest:
                return None
            fps = []
            for row in z["fps"]:  # row by row: unpacking 176k x 1024 at once would take 180 MB
                fp = DataStructs.ExplicitBitVect(MOSES_FP_BITS)
                fp.SetBitsFromList(np.flatnonzero(np.unpackbits(row)).tolist())
                fps.append(fp)
            fcd = (z["fcd_mu"], z["fcd_sigma"]) if "fcd_mu" in z else None
            return ReferenceSet(smiles, fps, Counter(dict(zip(z["frag_keys"], z["frag_counts"].tolist()))),
                                Counter(dict(zip(z["scaf_keys"], z["scaf_counts"].tolist()))), fcd)
    except (OSError, KeyError, ValueError):  # unreadable or old layout: recompute
        return None


def _write_cache(path, digest: str, ref: ReferenceSet) -> None:
    packed = np.zeros((len(ref.fps), MOSES_FP_BITS // 8), dtype=np.uint8)
    for i, fp in enumerate(ref.fps):
        bits = np.zeros(MOSES_FP_BITS, dtype=np.uint8)
        bits[list(fp.GetOnBits())] = 1
        packed[i] = np.packbits(bits)
    arrays = dict(digest=np.array(digest), fps=packed,
                  frag_keys=np.array(list(ref.frag), dtype=str), frag_counts=np.array(list(ref.frag.values())),
                  scaf_keys=np.array(list(ref.scaf), dtype=str), scaf_counts=np.array(list(ref.scaf.values())))
    if ref.fcd is not None:
        arrays.update(fcd_mu=ref.fcd[0], fcd_sigma=ref.fcd[1])
    from ..data import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:  # .npz: savez would append it to any other name
        np.savez_compressed(tmp, **arrays)


def load_references(reference_dir: str | Path, test: str | Path | None = None,
                    test_scaffolds: str | Path | None = None, train: str | Path | None = None,
                    with_fcd: bool = True, device: str = "cpu", log: Callable = lambda m: None
                    ) -> tuple[ReferenceSet, ReferenceSet | None, set[str] | None]:
    """(test, test_scaffolds, train) for `evaluate`. Each comes from its file when given (any SMILES
    file; canonicalized here, invalid rows ignored) or else from the prepared MOSES table in
    reference_dir, whose statistics are cached beside it as <split>_ref_stats.npz. test is required
    (DataError names the missing table); the others are None, with a log line, when absent."""
    from ..data import DataError, load_moses, moses_table_path
    from .screen import iter_input_chunks

    def smiles_of(path, split: str, required: bool):
        if path is not None:
            chunks = iter_input_chunks(path, None, 100_000)
            smiles = canonical_valid(s for c in chunks for s in c["input"].tolist())
            if not smiles:
                raise DataError(f"no valid SMILES in {path}")
            return smiles, None
        table = moses_table_path(split, reference_dir)
        if not required and not table.exists():
            log(f"no {split} set ({table} absent): its metrics are null")
            return None, None
        return load_moses(split, reference_dir)["smiles"].tolist(), table.with_name(f"{split}_ref_stats.npz")

    refs = []
    for split, path in (("test", test), ("test_scaffolds", test_scaffolds)):
        smiles, cache = smiles_of(path, split, split == "test")
        refs.append(None if smiles is None else reference_set(smiles, cache, with_fcd, device, log))
    train_smiles, _ = smiles_of(train, "train", False)
    return refs[0], refs[1], None if train_smiles is None else set(train_smiles)


def condition_targets(bundle, quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> np.ndarray:
    """(len(quantiles), 5) property vectors inside the training distribution: each property at the
    same quantile of the training sample stored in the checkpoint (nearest observed value, so HBD
    and HBA stay integers). MW, HBA and TPSA rise together in drug-like molecules, so a vector of
    equal quantiles is a plausible molecule, not a corner of property space."""
    sample = np.asarray(bundle.property_stats["sample"], dtype=np.float64)
    return np.stack([np.quantile(sample, q, axis=0, method="nearest") for q in quantiles])


def conditioning_at_targets(bundle, n_per_target: int = 1000, quantiles: Sequence[float] = (0.25, 0.5, 0.75),
                            seed: int = 0, temperature: float = 1.0, constrained: bool = True) -> list[dict]:
    """For each target vector (condition_targets): n prior samples decoded under that fixed
    condition; validity and the MAE of each RDKit property of the valid molecules against the target."""
    from ..decoding.sampling import sample_prior

    out = []
    for i, (q, target) in enumerate(zip(quantiles, condition_targets(bundle, quantiles))):
        strings, cond = sample_prior(bundle, n_per_target, seed=seed + 1 + i, temperature=temperature, props=target,
                                     constrained=constrained)
        mae = conditioning_mae(strings, cond)
        out.append({"quantile": q, "target": dict(zip(PROPERTIES, (float(x) for x in target))),
                    "n": n_per_target, "valid": fraction_valid(strings),
                    "mae": {p: mae[f"cond_mae_{p}"] for p in PROPERTIES}})
    return out


def unique_at_k_valid(bundle, first: Sequence[str], k: int, seed: int, temperature: float,
                      max_samples: int, constrained: bool = True) -> tuple[float | None, int]:
    """unique@k over the first k valid molecules: `first` (already sampled) topped up with more
    prior samples (other seeds) until k are valid or max_samples were drawn, as MOSES does by
    generating more than k. Returns (unique@k or None, samples drawn in all)."""
    from ..decoding.sampling import sample_prior

    valid, drawn, extra = canonical_valid(first), len(first), 0
    while len(valid) < k and drawn < max_samples:
        extra += 1
        m = min(max(k - len(valid), 1000) * 2, max_samples - drawn)
        more, _ = sample_prior(bundle, m, seed=seed + 1000 + extra, temperature=temperature, constrained=constrained)
        valid += canonical_valid(more)
        drawn += m
    return (fraction_unique(valid, k) if len(valid) >= k else None), drawn


def evaluate(bundle, n: int, test: ReferenceSet, test_scaffolds: ReferenceSet | None = None,
             train: set[str] | None = None, seed: int = 0, temperature: float = 1.0,
             n_reconstruct: int = 1000, with_fcd: bool = True, device: str = "cpu", n_per_target: int = 1000,
             log: Callable = lambda m: None, constrained: bool = True, samples: list | None = None) -> dict:
    """Sample n molecules from the prior (conditions drawn from the training distribution) and
    compute every metric. Reconstruction: exact-match rate of greedy decoding of mu over
    `n_reconstruct` molecules drawn from `test` (default_rng(seed)). unique@10000 is over the first
    10,000 valid molecules, sampling more when the n samples hold fewer (up to 4·n in
    all; `n_sampled_unique`). `conditioning_targets`: n_per_target samples under each of three fixed
    conditions (training quantiles 0.25/0.5/0.75; 0 skips). Keys missing data are None.
    Every decode uses the grammar mask when `constrained` (default); validity is reported both
    ways: `valid` (this run's mode), `valid_constrained` and `valid_unconstrained` (the same n
    latents and conditions decoded with the mask on and off). `samples`: a list that receives the
    valid canonical generated SMILES."""
    from ..decoding.sampling import sample_prior

    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        t0 = time.time()
        value = fn(*args, **kw)
        timings[name] = round(time.time() - t0, 3)
        log(f"{name}: {value if not isinstance(value, (list, tuple, dict)) else 'done'} ({timings[name]:.1f} s)")
        return value

    strings, conditions = timed("sample", sample_prior, bundle, n, seed=seed, temperature=temperature,
                                constrained=constrained)
    other, _ = timed("sample_other_mode", sample_prior, bundle, n, seed=seed, temperature=temperature,
                     constrained=not constrained)
    gen = canonical_valid(strings)  # every metric below sees the same valid canonical list
    gen_mols = valid_mols(gen)
    if samples is not None:  # the caller wants the valid canonical samples too (evaluate --plot)
        samples.extend(gen)
    m: dict = {"valid": timed("valid", fraction_valid, strings),
               "unique@1000": fraction_unique(gen, 1000),
               "novelty": timed("novelty", novelty, gen, train) if train is not None else None,
               "intdiv": timed("intdiv", internal_diversity, gen_mols, 1)}
    m["valid_constrained" if constrained else "valid_unconstrained"] = m["valid"]
    m["valid_unconstrained" if constrained else "valid_constrained"] = fraction_valid(other)
    # ChemNet runs once on the generated set; both FCDs reuse its statistics
    gen_stats = timed("chemnet", chemnet_stats, gen, device) if with_fcd and fcd_available() and len(gen) > 1 else None
    for suffix, ref in (("", test), ("_scaf", test_scaffolds)):
        m["fcd" + suffix] = frechet_distance(gen_stats, ref.fcd) \
            if gen_stats is not None and ref is not None and ref.fcd is not None else None
        m["snn" + suffix] = timed("snn" + suffix, snn, gen_mols, ref.fps) if ref is not None else None
        m["frag" + suffix] = timed("frag" + suffix, lambda: cosine_similarity(fragment_counts(gen_mols), ref.frag)) \
            if ref is not None else None
        m["scaf" + suffix] = timed("scaf" + suffix, lambda: cosine_similarity(scaffold_counts(gen_mols), ref.scaf)) \
            if ref is not None else None
    rng = np.random.default_rng(seed)
    k = min(n_reconstruct, len(test.smiles))
    picked = [test.smiles[i] for i in sorted(rng.choice(len(test.smiles), k, replace=False))] if k > 0 else []
    table = timed("reconstruction", reconstruction_table, bundle, picked, constrained=constrained) if picked else None
    m["reconstruction"] = float(table["exact"].mean()) if table is not None else None
    m.update(timed("cond_mae", conditioning_mae, strings, conditions))
    m["unique@10000"], m["n_sampled_unique"] = timed(
        "unique@10000", unique_at_k_valid, bundle, strings, 10000, seed, temperature, 4 * n, constrained)
    if n_per_target > 0:
        m["conditioning_targets"] = timed("conditioning_targets", conditioning_at_targets, bundle, n_per_target,
                                          seed=seed, temperature=temperature, constrained=constrained)
    m["intdiv2"] = timed("intdiv2", internal_diversity, gen_mols, 2)
    m["filters"] = timed("filters", fraction_passes_filters, gen_mols)
    # required keys first (the contract in ARCHITECTURE.md), then the extras
    required = ["valid", "unique@1000", "unique@10000", "novelty", "intdiv", "fcd", "snn", "frag", "scaf",
                "reconstruction"] + [f"cond_mae_{p}" for p in PROPERTIES]
    out = {key: m.pop(key) for key in required}
    out.update(m, n=n, n_valid=len(gen), n_reconstruct=len(picked), constrained=constrained, timings=timings)
    return out


def property_frame(smiles: Sequence[str], n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """RDKit mw, logp, hbd, hba, tpsa, qed, sa of up to `n` of `smiles` (a seeded random subset):
    what `evaluate --plot` compares, generated against the test set."""
    from ..chem import SCORES, scores_array

    smiles = list(smiles)
    if len(smiles) > n:
        idx = np.sort(np.random.default_rng(seed).choice(len(smiles), n, replace=False))
        smiles = [smiles[i] for i in idx]
    with rdBase.BlockLogs():
        arr = scores_array([parse(s) for s in smiles])
    return pd.DataFrame(arr, columns=list(PROPERTIES + SCORES))
