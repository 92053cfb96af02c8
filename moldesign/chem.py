"""RDKit helpers: parsing, canonical SMILES, the five conditioning properties, QED and SA.

Definitions used everywhere in moldesign (training conditions, generation output, screening):

    mw    Descriptors.MolWt            average molecular weight (g/mol)
    logp  Crippen.MolLogP              Wildman-Crippen LogP
    hbd   rdMolDescriptors.CalcNumHBD  H-bond donors   (RDKit's Lipinski.NumHDonors)
    hba   rdMolDescriptors.CalcNumHBA  H-bond acceptors (RDKit's Lipinski.NumHAcceptors)
    tpsa  rdMolDescriptors.CalcTPSA    topological polar surface area (Ertl; N and O only)
    qed   QED.qed                      quantitative estimate of drug-likeness
    sa    Contrib SA_Score             synthetic accessibility, 1 (easy) .. 10 (hard)

RDKit's parser logs to stderr; `quiet_rdkit()` mutes it for the duration of a call only, so
importing this module changes no global state.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os
from typing import Iterable, Iterator, Sequence

import numpy as np
from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import QED, Crippen, DataStructs, Descriptors, rdMolDescriptors
from rdkit.Chem import rdFingerprintGenerator

from .config import PROPERTIES  # noqa: F401  (re-exported: the five conditioning properties)
from .workers import process_pool

INTEGER_PROPERTIES = frozenset({"hbd", "hba"})
SCORES: tuple[str, ...] = ("qed", "sa")


class InvalidSmiles(ValueError):
    """A SMILES string RDKit cannot parse (the message names the string)."""


def quiet_rdkit():
    """Silence RDKit's C++ logger inside the block, then restore the previous state (so nested
    blocks and a caller's own muting survive). A context manager: `with quiet_rdkit(): ...`."""
    return rdBase.BlockLogs()


MAX_SMILES_CHARS = 10_000
"""Longest SMILES moldesign parses. RDKit's SMILES writer crashes the process (segfault, no
message) on chains of 14,000-20,000 atoms, and a molecule has at most as many atoms as its SMILES
has characters; a drug-like molecule is under 100 characters, a large peptide a few hundred."""


def shorten(text: str, n: int = 80) -> str:
    """A long input cut for a one-line message: the first n characters and how many there are."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text):,} characters)"


def too_long(smiles: str) -> str | None:
    """The one-line reason a SMILES is refused for its length, or None."""
    if isinstance(smiles, str) and len(smiles) > MAX_SMILES_CHARS:
        return (f"SMILES of {len(smiles):,} characters ({smiles[:20]}...) is longer than the {MAX_SMILES_CHARS:,} "
                f"moldesign reads")
    return None


def mol_from_smiles(smiles: str) -> Chem.Mol:
    """Parse a SMILES; raise InvalidSmiles naming the input if RDKit rejects it, it is empty, or it is
    longer than MAX_SMILES_CHARS."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidSmiles(f"empty SMILES: {smiles!r}")
    if reason := too_long(smiles):
        raise InvalidSmiles(reason)
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise InvalidSmiles(f"invalid SMILES: {shorten(smiles)!r}")
    return mol


def try_mol(smiles: str) -> Chem.Mol | None:
    """Parse a SMILES, returning None instead of raising (for batch work)."""
    try:
        return mol_from_smiles(smiles)
    except InvalidSmiles:
        return None


def canonicalize(smiles: str, isomeric: bool = True) -> str:
    """Canonical RDKit SMILES; raises InvalidSmiles."""
    return Chem.MolToSmiles(mol_from_smiles(smiles), isomericSmiles=isomeric)


def try_canonical(smiles: str, isomeric: bool = True) -> str | None:
    mol = try_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=isomeric)


@functools.lru_cache(maxsize=1)
def _standardizers():
    from rdkit.Chem.MolStandardize import rdMolStandardize

    return rdMolStandardize.LargestFragmentChooser(), rdMolStandardize.Uncharger()


def standardize_mol(mol: Chem.Mol) -> Chem.Mol:
    """The form every training molecule and every user seed takes (model 2, ZINC250k):
    largest fragment (salts and solvents dropped), neutralized where a neutral form exists
    (rdMolStandardize.Uncharger: carboxylates -> COOH, protonated amines -> amines, as a chemist
    types them; quaternary N+ and nitro groups keep their charges), stereo removed (the model is
    trained without stereo: 63% of ZINC250k carries it, and a decoder that must also guess it
    reconstructs less). Returns a new Mol."""
    chooser, uncharger = _standardizers()
    out = uncharger.uncharge(chooser.choose(mol))  # a new Mol: the caller's is left as it was
    Chem.RemoveStereochemistry(out)
    return out


def standardize(smiles: str) -> str:
    """Standardized canonical SMILES (see standardize_mol); raises InvalidSmiles."""
    return Chem.MolToSmiles(standardize_mol(mol_from_smiles(smiles)), isomericSmiles=False)


def is_valid(smiles: str) -> bool:
    """True when RDKit parses the string into a molecule with at least one atom."""
    mol = try_mol(smiles)
    return mol is not None and mol.GetNumAtoms() > 0


def mol_properties(mol: Chem.Mol) -> dict[str, float]:
    """The five conditioning properties of a parsed molecule (see module docstring)."""
    return {
        "mw": Descriptors.MolWt(mol),
        "logp": Crippen.MolLogP(mol),
        "hbd": float(rdMolDescriptors.CalcNumHBD(mol)),
        "hba": float(rdMolDescriptors.CalcNumHBA(mol)),
        "tpsa": rdMolDescriptors.CalcTPSA(mol),
    }


@functools.lru_cache(maxsize=1)
def _sascorer():
    """Load RDKit's Contrib SA_Score module from the RDKit installation (not a PyPI package)."""
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    spec = importlib.util.spec_from_file_location("moldesign_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sa_score(mol: Chem.Mol) -> float:
    """Ertl & Schuffenhauer synthetic accessibility score, 1 (easy) .. 10 (hard)."""
    return float(_sascorer().calculateScore(mol))


def qed(mol: Chem.Mol) -> float:
    return float(QED.qed(mol))


def mol_scores(mol: Chem.Mol) -> dict[str, float]:
    """Five properties plus QED and SA."""
    out = mol_properties(mol)
    out["qed"] = qed(mol)
    out["sa"] = sa_score(mol)
    return out


def _row(smiles: str, with_scores: bool, standardized: bool = False) -> dict:
    """One batch row: never raises; bad input gives valid=False and an error string."""
    mol = try_mol(smiles) if isinstance(smiles, str) else None
    if mol is not None and standardized:
        mol = standardize_mol(mol)
    keys = PROPERTIES + (SCORES if with_scores else ())
    if mol is None:
        err = "empty SMILES" if not isinstance(smiles, str) or not smiles.strip() else "invalid SMILES"
        return {"smiles": None, "valid": False, "error": err, **{k: math.nan for k in keys}}
    values = mol_scores(mol) if with_scores else mol_properties(mol)
    return {"smiles": Chem.MolToSmiles(mol), "valid": True, "error": "", **values}


def _rows_chunk(args: tuple[list[str], bool, bool]) -> list[dict]:
    smiles, with_scores, standardized = args
    with quiet_rdkit():
        return [_row(s, with_scores, standardized) for s in smiles]


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def compute_table(
    smiles: Sequence[str],
    with_scores: bool = False,
    workers: int = 1,
    chunk_size: int = 2000,
    progress: bool = False,
    desc: str = "properties",
    standardized: bool = False,
):
    """Canonical SMILES + properties for a list of SMILES, in input order, one row per input.

    Returns a pandas DataFrame with columns `input, smiles, valid, error, mw, logp, hbd, hba, tpsa`
    (+ `qed, sa` when with_scores). Invalid rows are kept with valid=False. `workers > 1` uses a
    process pool; chunks come back in order (executor.map preserves it). `standardized`: apply
    standardize_mol first, so `smiles` is the standardized non-isomeric form.
    """
    import pandas as pd
    from tqdm import tqdm

    smiles = list(smiles)
    jobs = [(list(c), with_scores, standardized) for c in _chunks(smiles, chunk_size)]
    rows: list[dict] = []
    bar = tqdm(total=len(smiles), desc=desc, disable=not progress, unit="mol", mininterval=1.0)
    with contextlib.ExitStack() as stack:
        if workers <= 1 or len(jobs) <= 1:
            results: Iterable[list[dict]] = map(_rows_chunk, jobs)
        else:  # workers die with this process and are stopped at once on an interrupt (workers.py)
            results = stack.enter_context(process_pool(workers)).map(_rows_chunk, jobs)
        for chunk in results:
            rows.extend(chunk)
            bar.update(len(chunk))
    bar.close()
    df = pd.DataFrame(rows)
    df.insert(0, "input", pd.Series(smiles, dtype=object))  # object: keep None as None
    return df


def properties_array(smiles: Sequence[str]) -> np.ndarray:
    """(n, 5) float array of PROPERTIES; rows of NaN for invalid SMILES."""
    out = np.full((len(smiles), len(PROPERTIES)), np.nan)
    with quiet_rdkit():
        for i, s in enumerate(smiles):
            mol = try_mol(s)
            if mol is not None:
                p = mol_properties(mol)
                out[i] = [p[k] for k in PROPERTIES]
    return out


def scores_array(mols: Sequence) -> np.ndarray:
    """(n, 7) RDKit values of PROPERTIES + SCORES for parsed molecules; NaN rows for None."""
    keys = PROPERTIES + SCORES
    out = np.full((len(mols), len(keys)), np.nan)
    for i, m in enumerate(mols):
        if m is not None:
            s = mol_scores(m)
            out[i] = [s[k] for k in keys]
    return out


# ---------------------------------------------------------------- similarity
_MORGAN = None


def morgan_fp(mol: Chem.Mol):
    """Morgan fingerprint, radius 2, 2048 bits (ECFP4-like) used for all Tanimoto similarities."""
    global _MORGAN
    if _MORGAN is None:  # generator built lazily: no RDKit work at import time
        _MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return _MORGAN.GetFingerprint(mol)


def tanimoto_to(seed: Chem.Mol, mols: Sequence[Chem.Mol | None]) -> np.ndarray:
    """Tanimoto similarity of each molecule to `seed` (NaN for None), via RDKit's bulk routine."""
    out = np.full(len(mols), np.nan)
    idx = [i for i, m in enumerate(mols) if m is not None]
    if idx:
        sims = DataStructs.BulkTanimotoSimilarity(morgan_fp(seed), [morgan_fp(mols[i]) for i in idx])
        out[idx] = sims
    return out


# ---------------------------------------------------------------- alerts and rules
ALERT_CATALOGS: tuple[str, ...] = ("pains", "brenk")


@functools.lru_cache(maxsize=None)
def _filter_catalog(name: str):
    """RDKit FilterCatalog for one alert set, built once per process (it compiles ~500 SMARTS)."""
    from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

    which = {"pains": FilterCatalogParams.FilterCatalogs.PAINS,
             "brenk": FilterCatalogParams.FilterCatalogs.BRENK}
    if name not in which:
        raise ValueError(f"unknown alert catalog {name!r}; choose from {', '.join(ALERT_CATALOGS)}")
    params = FilterCatalogParams()
    params.AddCatalog(which[name])
    return FilterCatalog(params)


def structural_alerts(mol: Chem.Mol, catalog: str) -> list[str]:
    """Names of the alerts of `catalog` that match, in catalog order, each name once.

    pains: PAINS families A, B and C (Baell & Holloway, J. Med. Chem. 2010; 480 RDKit entries).
    brenk: unwanted groups of Brenk et al., ChemMedChem 2008 (105 entries).
    """
    return list(dict.fromkeys(e.GetDescription() for e in _filter_catalog(catalog).GetMatches(mol)))


def lipinski_violations(mol: Chem.Mol) -> list[str]:
    """Rule-of-five limits a molecule exceeds (Lipinski et al., Adv. Drug Deliv. Rev. 1997).

    MW (Descriptors.MolWt) > 500, LogP (Crippen) > 5, donors > 5, acceptors > 10, with donors
    = NH + OH count and acceptors = N + O count as in the paper (CalcNumLipinskiHBD/HBA). These
    counts differ from the `hbd`/`hba` columns (CalcNumHBD/HBA, pharmacophore definitions).
    """
    out = []
    if Descriptors.MolWt(mol) > 500:
        out.append("mw>500")
    if Crippen.MolLogP(mol) > 5:
        out.append("logp>5")
    if rdMolDescriptors.CalcNumLipinskiHBD(mol) > 5:
        out.append("nh_oh>5")
    if rdMolDescriptors.CalcNumLipinskiHBA(mol) > 10:
        out.append("n_o>10")
    return out


def lipinski_pass(violations: Sequence[str]) -> bool:
    """Lipinski's own criterion: poor absorption is likely with MORE than one violation."""
    return len(violations) <= 1


def veber_violations(mol: Chem.Mol) -> list[str]:
    """Veber et al., J. Med. Chem. 2002: rotatable bonds <= 10 and TPSA <= 140; both must hold.
    Rotatable bonds: rdMolDescriptors.CalcNumRotatableBonds (RDKit's default, strict definition)."""
    out = []
    if rdMolDescriptors.CalcNumRotatableBonds(mol) > 10:
        out.append("rotb>10")
    if rdMolDescriptors.CalcTPSA(mol) > 140:
        out.append("tpsa>140")
    return out


# ---------------------------------------------------------------- penalized logP (benchmark objective)
# Normalization constants of the penalized logP used by GCPN, MoFlow, LIMO, ... (mean ± std of each
# term over ZINC250k, as published in the JT-VAE repository's scoring code and reused since).
PLOGP_LOGP_MEAN, PLOGP_LOGP_STD = 2.4570953396190123, 1.434324401111988
PLOGP_SA_MEAN, PLOGP_SA_STD = -3.0525811293166134, 0.8335207024513095  # of −SA
PLOGP_CYCLE_MEAN, PLOGP_CYCLE_STD = -0.0485696876403053, 0.2860212110245455  # of −cycle


def ring_penalty(mol: Chem.Mol) -> float:
    """cycle = max(0, largest ring size − 6) (0 for acyclic molecules): the ring term of penalized logP."""
    sizes = [len(r) for r in mol.GetRingInfo().AtomRings()]
    return float(max(0, max(sizes, default=0) - 6))


def plogp_raw(mol: Chem.Mol) -> float:
    """logP − SA (Crippen logP, Ertl SA), no ring term, no normalization: the units of JT-VAE's
    similarity-constrained task (Jin et al. 2018, `opt.*.logP-SA` files)."""
    return float(Crippen.MolLogP(mol) - sa_score(mol))


def penalized_logp(mol: Chem.Mol) -> float:
    """Normalized penalized logP (GCPN, VJTNN, MoFlow, LIMO): each of logP, −SA and −cycle
    standardized by its ZINC250k mean and std (constants above), then summed."""
    return float((Crippen.MolLogP(mol) - PLOGP_LOGP_MEAN) / PLOGP_LOGP_STD
                 + (-sa_score(mol) - PLOGP_SA_MEAN) / PLOGP_SA_STD
                 + (-ring_penalty(mol) - PLOGP_CYCLE_MEAN) / PLOGP_CYCLE_STD)


_MORGAN_COUNT = None


def morgan_count_fp(mol: Chem.Mol):
    """Unhashed Morgan count fingerprint, radius 2 (JT-VAE's similarity in its logP task:
    AllChem.GetMorganFingerprint(mol, 2), through RDKit's current generator API)."""
    global _MORGAN_COUNT
    if _MORGAN_COUNT is None:
        _MORGAN_COUNT = rdFingerprintGenerator.GetMorganGenerator(radius=2)
    return _MORGAN_COUNT.GetSparseCountFingerprint(mol)


# One-atom substitutions for the "one-atom edit" floor of lead optimization (issue 17): the
# element swaps a chemist tries first. Aromatic n→c and aliphatic N→C keep the atom's valence
# shell; C→Cl applies only where carbon has one heavy neighbour (a methyl or terminal carbon).
ONE_ATOM_EDITS: tuple[tuple[int, bool, int], ...] = ((8, False, 16), (7, False, 6), (7, True, 6), (6, False, 17))


def one_atom_edits(mol: Chem.Mol) -> list[str]:
    """Canonical SMILES of every molecule one substitution away (O→S, N→C, n→c, C→Cl), distinct,
    the molecule itself excluded; substitutions RDKit cannot sanitize are skipped."""
    own = Chem.MolToSmiles(mol)
    out: dict[str, None] = {}
    with quiet_rdkit():
        for atom in mol.GetAtoms():
            for src, aromatic, dst in ONE_ATOM_EDITS:
                if atom.GetAtomicNum() != src or atom.GetIsAromatic() != aromatic or atom.GetFormalCharge():
                    continue
                if dst == 17 and atom.GetDegree() != 1:
                    continue
                rw = Chem.RWMol(mol)
                a = rw.GetAtomWithIdx(atom.GetIdx())
                a.SetAtomicNum(dst)
                a.SetNoImplicit(False)
                a.SetNumExplicitHs(0)
                try:
                    Chem.SanitizeMol(rw)
                    smi = Chem.MolToSmiles(rw)
                except Exception:  # noqa: BLE001 - RDKit raises several kinds for impossible valences
                    continue
                if smi != own and Chem.MolFromSmiles(smi) is not None:
                    out[smi] = None
    return list(out)


def canonical_mols(strings: Sequence[str]) -> tuple[list[str | None], list]:
    """Validate decoded strings with RDKit: (canonical non-isomeric SMILES or None, Mol or None).
    A parse that yields no atoms (the empty string) counts as invalid, and so does one whose
    canonical SMILES RDKit cannot read back (rare charged aromatic systems, e.g.
    `...c(=CCC=[n+]3c(=O)c[n+]3=O)...`, parse but fail to kekulize once written out; their scores
    then raise inside RDKit's own QED). The Mol returned is the canonical SMILES' parse."""
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
