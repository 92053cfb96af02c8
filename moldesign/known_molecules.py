"""Drug names a chemist types instead of SMILES (`--like tamiflu`), case-insensitive.

SMILES are the isomeric structures from PubChem (stereocentres kept where the drug is one
stereoisomer). `resolve_molecule` accepts either a name or a SMILES.
"""
from __future__ import annotations

import difflib

from .chem import InvalidSmiles, canonicalize, shorten, too_long

KNOWN_MOLECULES: dict[str, str] = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "oseltamivir": "CCC(CC)O[C@@H]1C=C(C[C@@H]([C@H]1NC(C)=O)N)C(=O)OCC",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "penicillin g": "CC1([C@@H](N2[C@H](S1)[C@@H](C2=O)NC(=O)Cc1ccccc1)C(=O)O)C",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(n1)-c1cccnc1",
    "sildenafil": "CCCc1nn(C)c2c1nc([nH]c2=O)-c1cc(ccc1OCC)S(=O)(=O)N1CCN(C)CC1",
    "atorvastatin": "CC(C)c1c(C(=O)Nc2ccccc2)c(-c2ccccc2)c(-c2ccc(F)cc2)n1CC[C@@H](O)C[C@@H](O)CC(=O)O",
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
    "morphine": "CN1CC[C@]23[C@@H]4Oc5c3c(C[C@@H]1[C@@H]2C=C[C@@H]4O)ccc5O",
    "metformin": "CN(C)C(=N)N=C(N)N",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "naproxen": "COc1ccc2cc([C@H](C)C(=O)O)ccc2c1",
    "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "omeprazole": "COc1ccc2[nH]c(nc2c1)S(=O)Cc1ncc(C)c(OC)c1C",
    "warfarin": "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O",
    "propranolol": "CC(C)NCC(O)COc1cccc2ccccc12",
    "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "haloperidol": "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1",
    "losartan": "CCCCc1nc(Cl)c(CO)n1Cc1ccc(cc1)-c1ccccc1-c1nnn[nH]1",
    "metoprolol": "COCCc1ccc(OCC(O)CNC(C)C)cc1",
    "diphenhydramine": "CN(C)CCOC(c1ccccc1)c1ccccc1",
}

ALIASES: dict[str, str] = {
    "tamiflu": "oseltamivir",
    "acetaminophen": "paracetamol",
    "tylenol": "paracetamol",
    "penicillin": "penicillin g",
    "benzylpenicillin": "penicillin g",
    "penicillin_g": "penicillin g",
    "penicillin-g": "penicillin g",
    "celebrex": "celecoxib",
    "gleevec": "imatinib",
    "viagra": "sildenafil",
    "lipitor": "atorvastatin",
    "acetylsalicylic acid": "aspirin",
    "advil": "ibuprofen",
    "valium": "diazepam",
    "prozac": "fluoxetine",
    "prilosec": "omeprazole",
    "coumadin": "warfarin",
    "haldol": "haloperidol",
    "cozaar": "losartan",
    "benadryl": "diphenhydramine",
}


class UnknownMolecule(ValueError):
    """Neither a known drug name nor a valid SMILES."""


def known_names() -> list[str]:
    return sorted(set(KNOWN_MOLECULES) | set(ALIASES))


def lookup_name(name: str) -> str | None:
    """SMILES for a known drug name (case-insensitive), or None."""
    key = " ".join(name.strip().lower().split())
    key = ALIASES.get(key, key)
    return KNOWN_MOLECULES.get(key)


def resolve_molecule(text: str) -> tuple[str, str]:
    """A name or a SMILES → (label, canonical SMILES).

    Names are tried first (so `CC` is ethane but `caffeine` is the drug). Raises UnknownMolecule
    with a one-line message listing close names when the text is neither.
    """
    if not isinstance(text, str) or not text.strip():
        raise UnknownMolecule(f"empty molecule: {text!r}")
    if reason := too_long(text):  # before the name lookup: fuzzy matching a 100,000-character text takes minutes
        raise UnknownMolecule(reason)
    smiles = lookup_name(text)
    if smiles is not None:
        return text.strip().lower(), canonicalize(smiles)
    if len(text.strip().split()) > 1:  # RDKit would read up to the first blank and drop the rest silently
        raise UnknownMolecule(f"{text!r} contains whitespace: give one SMILES without spaces or tabs "
                              f"(names after a blank and CXSMILES extensions are not read)")
    try:
        return text.strip(), canonicalize(text)
    except InvalidSmiles:
        close = difflib.get_close_matches(text.strip().lower()[:100], known_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; known names: " + ", ".join(
            sorted(KNOWN_MOLECULES)
        )
        raise UnknownMolecule(f"{shorten(text)!r} is neither a known molecule name nor a valid SMILES{hint}") from None
