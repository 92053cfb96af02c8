"""User molecules and requested values, checked before any decoding: a name or SMILES becomes a
Seed the model can encode; a requested property value is validated and compared with the model's
training range; a seed file (generate --like FILE) is recognized and read."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import PROPERTIES
from ..errors import DesignInputError
from ..model.checkpoint import Bundle


class UnusableSeed(DesignInputError):
    """A molecule this model cannot design from (no organic part, tokens outside the vocabulary, too
    long): bad input for one molecule, so a seed file keeps going and flags that row."""


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
    InvalidSmiles for text that is neither a name nor a SMILES, and UnusableSeed naming the
    molecule when its standard form has no carbon or is a single atom (a salt such as [Na+].[Cl-]
    leaves a chloride: nothing to design from), when its tokens are outside the vocabulary or it
    is longer than `config.max_len`.
    """
    from rdkit import Chem

    from ..chem import mol_from_smiles, mol_properties, standardize_mol
    from ..known_molecules import resolve_molecule
    from ..model.tokenizer import TokenizeError, UnknownTokenError

    label, smiles = resolve_molecule(text)
    mol = mol_from_smiles(smiles)
    parent = standardize_mol(mol)
    flat = Chem.MolToSmiles(parent, isomericSmiles=False)
    name = label if label == flat else f"{label} ({flat})"
    check_organic(label, parent, flat)
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
        raise UnusableSeed(f"{name} cannot be encoded by this model: tokens not in its vocabulary: {detail}") from None
    except ValueError:
        n = len(bundle.vocab.encode(flat))
        raise UnusableSeed(f"{name} is too long for this model: {n} tokens with <bos>/<eos>, "
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


def check_organic(label: str, parent, flat: str) -> None:
    """Refuse a seed whose standard form (largest fragment) is no organic molecule: without carbon
    or a single atom, what is left of a salt or a metal is nothing the model has seen or could
    vary (UnusableSeed, one line naming it)."""
    if parent.GetNumAtoms() < 2:
        raise UnusableSeed(f"{label} has no organic part to design from: its largest fragment after "
                           f"standardization is the single atom {flat}")
    if not any(a.GetAtomicNum() == 6 for a in parent.GetAtoms()):
        raise UnusableSeed(f"{label} has no organic part to design from: its largest fragment after "
                           f"standardization, {flat}, has no carbon")


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
    from ..chem import INTEGER_PROPERTIES

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


# ------------------------------------------------------------------ seed files (generate --like FILE)
SEED_FILE_SUFFIXES = (".smi", ".txt", ".csv", ".tsv", ".parquet")
ID_COLUMNS = ("id", "seed_id", "name")


def is_seed_file(text: str | None) -> bool:
    """True when a --like value names a seed file (by suffix) rather than a molecule."""
    if not text:
        return False
    p = Path(text)
    suffix = p.suffixes[-2].lower() if p.suffix.lower() == ".gz" and len(p.suffixes) > 1 else p.suffix.lower()
    return suffix in SEED_FILE_SUFFIXES


def read_seeds(path: str | Path, smiles_col: str | None = None) -> list[tuple[str, str]]:
    """(seed_id, SMILES) per row of a .smi/.csv/.tsv/.parquet file. seed_id: the first of the
    columns id, seed_id, name (any case; a .smi file's second field is `name`) whose values are
    all present, else the 1-based row number."""
    from ..data import read_smiles_file

    df = read_smiles_file(path, smiles_col)
    lower = {c.lower(): c for c in df.columns}
    ids = None
    for k in ID_COLUMNS:
        if k in lower:
            v = df[lower[k]].astype(str).str.strip()
            if len(v) and (v != "").all() and v.notna().all():
                ids = v.tolist()
                break
    if ids is None:
        ids = [str(i + 1) for i in range(len(df))]
    return list(zip(ids, df["smiles"].astype(str).tolist()))
