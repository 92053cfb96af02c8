"""SMILES grammar and valence mask: which next tokens can still lead to a valid molecule.

Every decoding strategy (moldesign.decoding) keeps one `ParseState` per sequence, updated
incrementally token by token, and asks `Grammar.mask(states)` for a (B, V) boolean mask of the
tokens allowed next. The mask covers, exactly and cheaply:

* branches: `(` only after an atom with free valence, no empty `()`, `)` only inside a branch;
* ring-bond labels (digits and `%nn`): opening reserves valence on the opening atom (with its
  bond order, `C=1`), closing needs a different, not yet bonded atom, consistent bond orders and
  free valence on both ends;
* bond orders: `=`/`#` only where both atoms keep enough valence (organic subset from RDKit's
  valence table; bracket atoms by element, charge and explicit H); an aromatic atom pays 1 for an
  exocyclic double bond (`c=O`, pyridones) and takes no triple bond;
* `<eos>` only when no branch, ring bond or bond symbol is open.

Some checks are too costly, or depend on more than the cached signature, to evaluate for every
token of every row; they run lazily, only for the token a strategy actually picks
(`Grammar.verify`), and a rejected pick is masked and the strategy picks again, which is the same
as masking it up front:

* the dead-end lookahead (`completable_after`): no token may leave a ring bond open with no atom
  left that a new atom could bond to (`C1CCO2`, `c1=1`, `C1CC(F)F`) — measured, the cause of most
  dead ends (rows whose mask later went empty);
* the aromatic rule (`aromatic_ok_after`): no token may leave an aromatic atom unable to reach
  two aromatic bonds (then it is in no aromatic ring: `c3c(cnc3C)o2` with N2 aliphatic,
  `Co1cccc1`); cheap bookkeeping, no parsing;
* kekulization: when a ring closure completes an aromatic system, a check that it can still be
  kekulized; on the other picks that settle an aromatic system (leave none of its atoms open),
  that it is not already unkekulizable. Both are decided on the parse state (`kekulizable`: which
  aromatic atoms need a double bond, partialsmiles' rule, then a perfect matching of them along
  aromatic bonds), the way partialsmiles (N. O'Boyle, MIT) decides them by re-parsing the prefix.
  partialsmiles stays the reference (`Grammar(kekulize="partialsmiles")`; a test holds the two to
  the same verdict on every allowed pick after every prefix of the committed samples) and the
  fallback when the matching search gives up: re-parsing cost ~0.25 ms a call and was 27% of
  constrained decoding's time;
* `<eos>` is accepted only when RDKit parses the whole string.

A length budget (`budget_mask`, applied by the strategies, which know the position) forbids tokens
after which the open rings and branches can no longer be closed within max_len. The mask is cached
per state signature (without the open ring bonds, whose labels are decided per state), so a batch
costs one dict look-up per row and step plus one rule per open ring bond.

Unsupported on purpose (never allowed): `.` (one molecule per string), `*`, `:` and `$` bonds,
charges/stereo outside brackets.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from ..model.tokenizer import EOS, SPECIAL_TOKENS, tokenize

# token kinds
SPECIAL, ATOM, BOND, OPEN, CLOSE, RING, EOS_KIND, OTHER = range(8)
START = -1  # `last` before the first token

_BRACKET = re.compile(r"^\[(\d+)?([A-Z][a-z]?|[a-z][a-z]?|\*)(@@?|@[A-Z]{2}\d*)?(H\d*)?([+-]\d*|[+-]{2,})?(:\d+)?\]$")
_ORGANIC = {"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "s", "p"}
_BOND_ORDER = {"-": 1, "=": 2, "#": 3, "/": 1, "\\": 1}


@lru_cache(maxsize=None)
def _valences(z: int) -> tuple[int, ...]:
    from rdkit import Chem

    return tuple(Chem.GetPeriodicTable().GetValenceList(z))


@lru_cache(maxsize=None)
def _atomic_number(symbol: str) -> int:
    from rdkit import Chem

    return Chem.GetPeriodicTable().GetAtomicNumber(symbol)


@dataclass(frozen=True)
class TokenInfo:
    kind: int
    cap: int = 0  # atoms: bond-order units the atom can take (valence minus explicit H)
    aromatic: bool = False
    order: int = 0  # bonds: 1 2 3
    label: str = ""  # ring bonds
    elem: int = 0  # atoms: atomic number, formal charge, H written in brackets (-1: organic subset,
    charge: int = 0  # implicit H); the kekulization rule (`_needs_double`) needs them
    hcount: int = -1


def classify(token: str) -> TokenInfo:
    """What a vocabulary token is, and for atoms how many bond-order units it can take.

    Valence comes from RDKit's table for the isoelectronic element (N+ like C, O- like F), the
    largest allowed value for non-aromatic atoms (S 6, P 7) and the first one for aromatic atoms,
    minus explicit H; aromatic carbon-like atoms give one unit to their π bond (c: 3).
    """
    if token in SPECIAL_TOKENS:
        return TokenInfo(EOS_KIND if token == EOS else SPECIAL)
    if token in _BOND_ORDER:
        return TokenInfo(BOND, order=_BOND_ORDER[token])
    if token == "(":
        return TokenInfo(OPEN)
    if token == ")":
        return TokenInfo(CLOSE)
    if token.isdigit() and len(token) == 1 or re.fullmatch(r"%\d\d", token):
        return TokenInfo(RING, label=token)
    if token in _ORGANIC:
        symbol, charge, hs, written_h = token, 0, 0, -1
    else:
        m = _BRACKET.match(token)
        if not m or m.group(2) == "*":
            return TokenInfo(OTHER)
        symbol = m.group(2)
        h = m.group(4)
        hs = 0 if not h else (int(h[1:]) if len(h) > 1 else 1)
        written_h = hs
        c = m.group(5) or ""
        charge = 0 if not c else (len(c) if set(c) <= {"+"} and len(c) > 1 else -len(c) if set(c) <= {"-"} and len(c) > 1
                                  else (1 if c[0] == "+" else -1) * (int(c[1:]) if len(c) > 1 else 1))
    aromatic = symbol[0].islower()
    try:
        z = _atomic_number(symbol.capitalize() if aromatic else symbol)
    except Exception:  # noqa: BLE001 - an element RDKit does not know: never allowed
        return TokenInfo(OTHER)
    iso = z - charge  # isoelectronic element: N+ ~ C, O- ~ F
    vals = _valences(iso) if 0 < iso < 119 else (-1,)
    if vals[0] == -1:  # any valence (metals): allow up to 6
        v = 6
    else:
        v = vals[0] if aromatic else max(vals)
    cap = v - hs - (1 if aromatic and iso in (5, 6) else 0)
    return TokenInfo(ATOM, cap=max(cap, 0), aromatic=aromatic, elem=z, charge=charge, hcount=written_h)


def _cost(aromatic: bool, order: int) -> int:
    """Valence units a bond of `order` takes from an atom (an aromatic atom's exocyclic double
    bond replaces its π bond, so costs 1)."""
    return 1 if aromatic and order == 2 else order


class ParseState:
    """Incremental parse of one SMILES prefix. Atoms are numbered in order of appearance."""

    __slots__ = ("tokens", "rem", "arom", "ab", "anbrs", "nbrs", "stack", "cur", "last", "bond", "bond_ring_ok", "rings",
                 "kek_pending", "kek_after", "atoms", "val", "multi")

    def __init__(self):
        self.tokens: list[str] = []
        self.rem: list[int] = []  # free valence units per atom
        self.arom: list[bool] = []
        self.ab: list[int] = []  # aromatic bonds per atom (no bond symbol between two aromatic atoms)
        self.anbrs: list[list[int]] = []  # per atom: the atoms it has those aromatic bonds to
        self.nbrs: list[set[int]] = []
        # for the kekulization check: per atom its TokenInfo, bond orders summed (an aromatic bond
        # counts 1) and its highest non-aromatic bond order
        self.atoms: list[TokenInfo] = []
        self.val: list[int] = []
        self.multi: list[int] = []
        self.stack: list[int] = []  # branch points
        self.cur = -1  # atom the next bond attaches to
        self.last = START
        self.bond = 0  # pending bond order (0: none)
        self.bond_ring_ok = False  # the pending bond may precede a ring label (C=1), not after `(`
        self.rings: dict[str, tuple[int, int, int]] = {}  # label → (opening atom, order or 0, units reserved)
        # an aromatic closure that kekulizes only if the closing atom gets more (c1=O, n1C): the
        # next atom, `)` or <eos> is checked again
        self.kek_pending = False
        self.kek_after: dict[int, bool] = {}  # token id → kek_pending after it (set by verify)

    def copy(self) -> "ParseState":
        s = ParseState.__new__(ParseState)
        s.tokens, s.rem, s.arom, s.ab = self.tokens[:], self.rem[:], self.arom[:], self.ab[:]
        # the per-atom sets and lists are shared: advance replaces the ones it changes instead of
        # changing them (copy-on-write), so a copy is O(atoms) pointers, not O(bonds) containers —
        # beam search copies a state per hypothesis and step (copying them all: 38% of its profiled time)
        s.nbrs, s.anbrs = self.nbrs[:], self.anbrs[:]
        s.atoms, s.val, s.multi = self.atoms[:], self.val[:], self.multi[:]
        s.stack, s.cur, s.last, s.bond, s.bond_ring_ok = self.stack[:], self.cur, self.last, self.bond, self.bond_ring_ok
        s.rings = dict(self.rings)
        s.kek_pending, s.kek_after = self.kek_pending, dict(self.kek_after)
        return s

    def smiles(self) -> str:
        return "".join(self.tokens)

    def signature(self) -> tuple:
        """Everything the mask of every token but the open ring-bond labels depends on (the cache
        key; those labels depend on their ring bond too and are computed per state)."""
        c = self.cur
        return (self.last, self.bond, self.bond_ring_ok, bool(self.stack),
                min(self.rem[c], 4) if c >= 0 else -1, c >= 0 and self.arom[c], bool(self.rings))


class Grammar:
    """The mask over one vocabulary (token list, ids in order)."""

    def __init__(self, tokens: Sequence[str], kekulize: str = "matching"):
        """kekulize: "matching" (our check on the parse state, `kekulizable`) or "partialsmiles"
        (re-parse the prefix with partialsmiles: the reference the tests hold the first to)."""
        if kekulize not in ("matching", "partialsmiles"):
            raise ValueError(f"kekulize must be 'matching' or 'partialsmiles', not {kekulize!r}")
        self.kekulize = kekulize
        self.tokens = list(tokens)
        self.info = [classify(t) for t in self.tokens]
        self.eos_id = self.tokens.index(EOS) if EOS in self.tokens else -1
        self._cache: dict[tuple, np.ndarray] = {}
        self.verify_calls = {"aromatic": 0, "eos": 0, "kekulize": 0, "lookahead": 0, "partial": 0}
        self.verify_rejects = dict.fromkeys(self.verify_calls, 0)
        # budget_mask: tokens still needed after each kind of token, relative to an atom's
        # (a bond or `(` needs an atom after it; `(` also a `)`; `)` meets one; rings per state)
        delta = {BOND: 1, OPEN: 2, CLOSE: -1}
        self._budget_delta = np.array([delta.get(i.kind, 0) for i in self.info])
        self._ring_ids = [t for t, i in enumerate(self.info) if i.kind == RING]
        self._label_ids = {self.info[t].label: t for t in self._ring_ids}
        self._bond_ids = [t for t, i in enumerate(self.info) if i.kind == BOND]
        # the stand-in atom after a bond symbol for the partial check (see _verify)
        self._stand_in = self.tokens.index("C") if "C" in self.tokens else -1

    # ------------------------------------------------------------------ the mask
    def allowed(self, st: ParseState, t: int) -> bool:
        """The structural rule for token id t after state st (no lazy check)."""
        info = self.info[t]
        k, last, c = info.kind, st.last, st.cur
        if k == ATOM:
            if last == START:
                return True
            order = st.bond or 1
            if info.aromatic and (order == 3 or (order == 2 and st.arom[c])):
                return False
            return _cost(st.arom[c], order) <= st.rem[c] and _cost(info.aromatic, order) <= info.cap
        if last == START:
            return False
        if k == BOND:
            if st.bond or last not in (ATOM, RING, CLOSE, OPEN) or (info.order == 3 and st.arom[c]):
                return False
            return _cost(st.arom[c], info.order) <= st.rem[c]
        if k == OPEN:
            return last in (ATOM, RING, CLOSE) and st.rem[c] >= 1
        if k == CLOSE:
            return bool(st.stack) and last in (ATOM, RING, CLOSE)
        if k == EOS_KIND:
            return last in (ATOM, RING, CLOSE) and not st.stack and not st.rings
        if k == RING:
            ring = st.rings.get(info.label)
            return self._opening_ok(st) if ring is None else self._closure_ok(st, ring)
        return False  # specials, `.`, `*`, …

    @staticmethod
    def _label_may_follow(st: ParseState) -> bool:
        """A ring label comes after an atom or a label, or a bond symbol right after one."""
        return st.last in (ATOM, RING) or (st.last == BOND and st.bond_ring_ok)

    @staticmethod
    def _opening_ok(st: ParseState) -> bool:
        """The structural rule for a ring label that opens a ring bond: where a label may follow,
        reserving the bond on the current atom."""
        return Grammar._label_may_follow(st) and _cost(st.arom[st.cur], st.bond or 1) <= st.rem[st.cur]

    @staticmethod
    def _closure_ok(st: ParseState, ring: tuple[int, int, int]) -> bool:
        """The structural rule for the label that closes `ring` (an open ring bond of st)."""
        if not Grammar._label_may_follow(st):
            return False
        c = st.cur
        a, o, reserved = ring
        if a == c or a in st.nbrs[c] or (o and st.bond and o != st.bond):
            return False
        order = st.bond or o or 1
        if order >= 2 and st.arom[a] and st.arom[c]:
            return False
        return (_cost(st.arom[c], order) <= st.rem[c]
                and _cost(st.arom[a], order) - reserved <= st.rem[a])

    def row_mask(self, st: ParseState) -> np.ndarray:
        """(V,) bool: `allowed` for every token. Cached by signature, with every ring label taken
        as an opening; the labels of open ring bonds are then decided per state (one per open
        ring), so the cache stays small (the open ring bonds' atoms in the key made ~7,000 cache
        misses per 1,000 rows, each running `allowed` for every token)."""
        key = st.signature()
        m = self._cache.get(key)
        if m is None:
            m = np.fromiter((self._opening_ok(st) if i.kind == RING else self.allowed(st, t)
                             for t, i in enumerate(self.info)), bool, len(self.tokens))
            self._cache[key] = m
        if st.rings:
            m = m.copy()
            for lab, ring in st.rings.items():
                t = self._label_ids.get(lab)
                if t is not None:
                    m[t] = self._closure_ok(st, ring)
        return m

    def mask(self, states: Sequence[ParseState], device=None) -> torch.Tensor:
        """(B, V) bool: the tokens each state allows next (structural rules, cached by signature)."""
        return torch.from_numpy(np.stack([self.row_mask(s) for s in states])).to(device or "cpu")

    # ------------------------------------------------------------------ length budget
    @staticmethod
    def need(st: ParseState) -> int:
        """Lower bound on the tokens still needed to finish st, `<eos>` included: a ring label per
        open ring bond, a `)` per open branch, an atom after `(` or a bond symbol (or first)."""
        pending = st.last in (START, OPEN) or (st.last == BOND and not st.rings)  # a ring closure meets a bond
        return len(st.rings) + len(st.stack) + pending + 1

    def budget_mask(self, st: ParseState, remaining: int) -> np.ndarray | None:
        """(V,) bool: the tokens after which the string can still finish within `remaining` more
        tokens (<eos> included), or None when every token can (the common case, checked first).
        A sound lower bound: it never refuses a prefix that fits, and at remaining 0 leaves only
        <eos>. It keeps a row from opening rings and branches it has no room left to close."""
        base = len(st.rings) + len(st.stack) + 1  # needed after an atom: closures, `)`s, <eos>
        if base + 2 <= remaining:
            return None
        need_after = base + self._budget_delta  # (V,)
        if st.rings:  # a bond symbol can be met by the ring label that closes an open ring bond
            need_after[self._bond_ids] = base
        for t in self._ring_ids:
            need_after[t] = base + (-1 if self.tokens[t] in st.rings else 1)
        ok = need_after <= remaining
        if self.eos_id >= 0:
            ok[self.eos_id] = True
        return ok

    def fits(self, st: ParseState, t: int, remaining: int) -> bool:
        """budget_mask(st, remaining)[t] for one token, without building the row."""
        base = len(st.rings) + len(st.stack) + 1
        if base + 2 <= remaining or t == self.eos_id:
            return True
        info = self.info[t]
        if info.kind == RING:
            need = base + (-1 if info.label in st.rings else 1)
        elif info.kind == BOND and st.rings:
            need = base
        else:
            need = base + int(self._budget_delta[t])
        return need <= remaining

    # ------------------------------------------------------------------ lazy checks
    def needs_verify(self, st: ParseState, t: int) -> bool:
        """True for the picks whose structural OK is not final: `<eos>`, a ring closure that
        completes an aromatic system (two aromatic ends, no other aromatic ring bond left open),
        and any ring label, or while a ring bond is open any atom or `)` (the dead-end lookahead)."""
        return self._lookahead_applies(st, t) or self._seals_aromatic(st, t) or self._needs_chem_check(st, t)

    def _lookahead_applies(self, st: ParseState, t: int) -> bool:
        k = self.info[t].kind
        return k == RING or (bool(st.rings) and k in (ATOM, CLOSE))

    def _needs_chem_check(self, st: ParseState, t: int) -> bool:
        """`<eos>` (RDKit) and the picks that can change an aromatic system's kekulization."""
        return self._needs_final_check(st, t) or self._needs_partial_check(st, t)

    def _needs_final_check(self, st: ParseState, t: int) -> bool:
        """`<eos>`, and the picks that complete an aromatic system (checked as complete)."""
        info = self.info[t]
        if info.kind == EOS_KIND or (st.kek_pending and info.kind in (ATOM, CLOSE)):
            return True
        if info.kind == ATOM and st.bond == 2 and st.arom[st.cur]:  # exocyclic c=O: the π count changes
            return True
        return self._completes_aromatic(st, t)

    def _needs_partial_check(self, st: ParseState, t: int) -> bool:
        """Picks that settle part of an unfinished aromatic system, so it may already be
        unkekulizable (`_partial_check` decides, as partialsmiles' partial mode would): a
        non-aromatic atom, a bond symbol or `)` on an aromatic current atom, and a ring closure by
        a non-aromatic atom onto an aromatic opener. Chosen by measurement (bench/decoding_bench.py, 400 samples at
        T = 1, shipped model): checking only where a system completes let rows walk on for many
        tokens in a system already dead, and these four kinds of pick are the ones partial mode
        refused (54/850, 32/210, 10/214, 164/245); aromatic atoms and ring labels on aromatic
        atoms, `)` onto an aromatic branch point, and aromatic atoms after aliphatic ones were
        checked 6,100 times and never refused, so they are left to the final checks. Of those
        four kinds only the picks that settle an aromatic system (`_settles_aromatic_system`) are
        parsed: partial mode cannot refuse the others (5,219 such picks decoding 1,000 rows: 3,093
        skipped, all of which partial mode accepts; 586 of the 2,126 parsed refused)."""
        info, c = self.info[t], st.cur
        k = info.kind
        if c < 0:
            return False
        if st.arom[c]:
            kind_ok = k in (BOND, CLOSE) or (k == ATOM and not info.aromatic)
        elif k == RING:
            ring = st.rings.get(self.tokens[t])
            kind_ok = ring is not None and st.arom[ring[0]]
        else:
            return False
        return kind_ok and self._settles_aromatic_system(st, t)

    def _settles_aromatic_system(self, st: ParseState, t: int) -> bool:
        """Whether pick t (a bond symbol is judged with a stand-in atom after it, as partial_ok is
        called) leaves an aromatic system — atoms joined by aromatic bonds — with none of its atoms
        still open, the only way partialsmiles' partial mode can newly refuse a prefix: it
        kekulizes only systems with no open atom (the current atom, a branch point, a ring-bond
        opener), and a settled system gets no more bonds. The atom that stops being open is the
        current one (after a new atom not aromatically bonded to it, or `)`), or the opener of the
        ring bond t closes (unless the closure is an aromatic bond, which joins it to the current
        atom). O(system size), no parsing."""
        info, c = self.info[t], st.cur
        k = info.kind
        if k in (ATOM, BOND, CLOSE):
            if k == ATOM and not st.bond and info.aromatic and st.arom[c]:
                return False  # the new atom joins c's system and is open
            leaving, still_open = c, {a for a, _, _ in st.rings.values()} | set(st.stack)
        elif k == RING and info.label in st.rings:
            a, o, _ = st.rings[info.label]
            if not (st.bond or o) and st.arom[a] and st.arom[c]:
                return False
            leaving = a
            still_open = {b for lab, (b, _, _) in st.rings.items() if lab != info.label} | set(st.stack) | {c}
        else:
            return False
        if leaving < 0 or leaving in still_open or not st.anbrs[leaving]:
            return False
        seen, todo = {leaving}, [leaving]
        while todo:
            for b in st.anbrs[todo.pop()]:
                if b in still_open:
                    return False
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return True

    def _completes_aromatic(self, st: ParseState, t: int) -> bool:
        info = self.info[t]
        if info.kind != RING or info.label not in st.rings:
            return False
        a = st.rings[info.label][0]
        if not (st.arom[a] and st.arom[st.cur]):
            return False
        return not any(st.arom[b] for lab, (b, _, _) in st.rings.items() if lab != info.label)

    def _seals_aromatic(self, st: ParseState, t: int) -> bool:
        """Picks that can leave an aromatic atom short of aromatic bonds for good: any atom, bond,
        `)` or ring label after an aromatic current atom, a new aromatic atom, a ring closure onto
        an aromatic opener."""
        info, c = self.info[t], st.cur
        k = info.kind
        if c < 0 or st.last == START:
            return False
        if st.arom[c] and k in (ATOM, CLOSE, RING, BOND):
            return True
        if k == ATOM:
            return info.aromatic
        if k == RING:
            ring = st.rings.get(info.label)
            return ring is not None and st.arom[ring[0]]
        return False

    @staticmethod
    def _labels(st: ParseState, a: int) -> int:
        """Open ring labels on atom a without a bond symbol (each may close onto an aromatic atom)."""
        return sum(1 for b, o, _ in st.rings.values() if b == a and not o)

    def aromatic_ok_after(self, st: ParseState, t: int) -> bool:
        """False when token id t (structurally allowed) leaves an aromatic atom unable to reach
        two aromatic bonds (bonds with no symbol between two aromatic atoms, chain or ring
        closure): it can then be in no aromatic ring and no continuation makes it valid. An atom
        can still gain aromatic bonds through its open ring labels and, while it is the current
        atom or a branch point on the stack, through its free valence. Measured: the
        `c3c(cnc3C)o2` / `c1c1CC…C1` dead ends (an aromatic atom ring-closed onto, or left between,
        non-aromatic atoms), found here when the atom is sealed instead of tokens later. Every
        aromatic atom of a canonical SMILES is in an aromatic ring, so has two aromatic bonds;
        `c1cCCC1`-like spellings (RDKit kekulizes them to a plain double bond) are refused by
        policy. O(depth + open rings), no parsing."""
        info, c = self.info[t], st.cur
        k = info.kind
        order = st.bond or 1
        if k == BOND:  # c's next bond will not be aromatic
            return not st.arom[c] or st.ab[c] + self._labels(st, c) + st.rem[c] - _cost(True, info.order) >= 2
        if k == ATOM:
            plain = not st.bond and info.aromatic and st.arom[c]
            if info.aromatic and plain + info.cap - _cost(True, order) < 2:  # the new atom, current next
                return False
            if not st.arom[c]:
                return True
            # c stops being current; it keeps new-atom access only as a branch point
            rem = st.rem[c] - _cost(True, order) if c in st.stack else 0
            return st.ab[c] + plain + self._labels(st, c) + rem >= 2
        if k == CLOSE:
            return st.ab[c] + self._labels(st, c) + (st.rem[c] if c in st.stack[:-1] else 0) >= 2
        ring = st.rings.get(info.label)
        if ring is None:  # opening on aromatic c: it stays current
            plain_label = 0 if st.bond else 1
            return st.ab[c] + self._labels(st, c) + plain_label + st.rem[c] - _cost(True, order) >= 2
        a, o, reserved = ring
        plain = not (st.bond or o) and st.arom[a] and st.arom[c]
        order = st.bond or o or 1
        if st.arom[c] and st.ab[c] + plain + self._labels(st, c) + st.rem[c] - _cost(True, order) < 2:
            return False
        if not st.arom[a]:
            return True
        rem = st.rem[a] - (_cost(True, order) - reserved) if a in st.stack else 0
        return st.ab[a] + plain + self._labels(st, a) - (0 if o else 1) + rem >= 2

    def completable_after(self, st: ParseState, t: int) -> bool:
        """Dead-end lookahead: False when token id t (structurally allowed) would leave a ring
        bond open with no atom left that a new atom could bond to.

        An open ring bond can only be closed by the current atom (a ring label needs free valence
        there) or by a new atom, and a new atom bonds to the current atom or, after `)`, to a
        branch point on the stack. So once the current atom and every branch point below it have
        no free valence, no continuation closes the ring: `c1=1` on an aromatic carbon, `C(F)F`
        with a ring still open. This was most of the measured dead ends (an empty mask later on);
        it is exact and sound (it never refuses a prefix of a valid SMILES), and costs O(depth).
        """
        info = self.info[t]
        k, c = info.kind, st.cur
        if k == CLOSE:  # the branch point becomes current; only new atoms can close rings now
            return any(st.rem[a] >= 1 for a in st.stack)
        if k == ATOM:
            if st.last == START:
                return True
            order = st.bond or 1
            if info.cap - _cost(info.aromatic, order) >= 1:
                return True
            # the current atom pays for the bond; it is on the stack right after `(`
            paid = _cost(st.arom[c], order)
            return any(st.rem[a] - (paid if a == c else 0) >= 1 for a in st.stack)
        if k != RING:
            return True
        ring = st.rings.get(info.label)
        if ring is None:  # opening: reserve on the current atom (never on the stack here)
            return st.rem[c] - _cost(st.arom[c], st.bond or 1) >= 1 or any(st.rem[a] >= 1 for a in st.stack)
        if len(st.rings) == 1:  # closing the last open ring bond
            return True
        a, o, reserved = ring
        order = st.bond or o or 1
        if st.rem[c] - _cost(st.arom[c], order) >= 1:
            return True
        extra = _cost(st.arom[a], order) - reserved  # the opener pays the difference (C1...=1)
        return any(st.rem[b] - (extra if b == a else 0) >= 1 for b in st.stack)

    def verify(self, st: ParseState, t: int) -> bool:
        """The lazy checks for one structurally allowed pick (call when needs_verify). Counts
        calls per check in `verify_calls` and refusals in `verify_rejects` (the dead-end
        instrumentation bench/decoding_bench.py reports)."""
        check, ok = self._verify(st, t)
        self.verify_calls[check] += 1
        if not ok:
            self.verify_rejects[check] += 1
        return ok

    def _verify(self, st: ParseState, t: int) -> tuple[str, bool]:
        info = self.info[t]
        if self._lookahead_applies(st, t) and not self.completable_after(st, t):
            return "lookahead", False
        if self._seals_aromatic(st, t):
            if not self.aromatic_ok_after(st, t):
                return "aromatic", False  # verify counts the call with the refusal
            self.verify_calls["aromatic"] += 1
        if not self._needs_final_check(st, t):
            if not self._needs_partial_check(st, t):
                return "lookahead", True
            # a bond symbol is judged with a stand-in atom after it (what it bonds to does not
            # change the ring's π count: c=C like c=O)
            return "partial", self._partial_check(st, t)
        if info.kind == EOS_KIND:
            return "eos", rdkit_valid(st.smiles())
        return "kekulize", self._kekulize_check(st, t)

    def _after(self, st: ParseState, t: int) -> ParseState:
        st2 = st.copy()
        self.advance(st2, t)
        return st2

    @staticmethod
    def _incomplete(st: ParseState, current_too: bool) -> set[int]:
        """Atoms that may still get bonds: ring-bond openers, branch points below the current
        atom and (partial mode) the current atom. The others are complete as written."""
        openers = {a for a, _, _ in st.rings.values()}
        open_atoms = openers | set(st.stack)
        if current_too:
            open_atoms.add(st.cur)
        elif st.cur not in openers:
            open_atoms.discard(st.cur)
        return open_atoms

    def _kek(self, st2: ParseState, incomplete: set[int], as_written: str, variants: bool = False) -> bool:
        """Kekulizable after the pick (st2), the current atom as written or, with `variants`, with
        one more substituent or an exocyclic double bond (the ways the string can go on that change
        its π count); `as_written` is the prefix for partialsmiles (the reference, and the
        fallback when the matching search gives up)."""
        if self.kekulize == "matching":
            gave_up = False
            for extra in [None] + ([(st2.cur, 1, 2, 2), (st2.cur, 1, 1, 0)] if variants else []):
                verdict = kekulizable(st2, incomplete, extra)
                if verdict:
                    return True
                gave_up |= verdict is None
            if not gave_up:
                return False
        return closure_kekulizable(as_written, variants)

    def _partial_check(self, st: ParseState, t: int) -> bool:
        """partialsmiles' partial mode on the pick (a bond symbol with a stand-in atom after it):
        no aromatic system without an open atom may be unkekulizable."""
        if self.kekulize == "matching" and (self.info[t].kind != BOND or self._stand_in >= 0):
            st2 = self._after(st, t)
            if self.info[t].kind == BOND:
                self.advance(st2, self._stand_in)
            verdict = kekulizable(st2, self._incomplete(st2, current_too=True))
            if verdict is not None:
                return verdict
        return partial_ok(st.smiles() + self.tokens[t] + ("C" if self.info[t].kind == BOND else ""))

    def _kekulize_check(self, st: ParseState, t: int) -> bool:
        info = self.info[t]
        s = st.smiles() + self.tokens[t]
        st2 = self._after(st, t)
        incomplete = self._incomplete(st2, current_too=False)
        if info.kind == RING:
            if self._kek(st2, incomplete, s):
                st.kek_after[t] = False
                return True
            cur_rem = st.rem[st.cur] - _cost(True, st.bond or 1)
            ok = cur_rem >= 1 and self._kek(st2, incomplete, s, variants=True)
            st.kek_after[t] = ok
            return ok
        # kek_pending, an atom or `)`: the closing atom is now complete
        return self._kek(st2, incomplete, s, variants=info.kind != ATOM)

    def check(self, st: ParseState, t: int) -> bool:
        """Full rule for one pick: structural mask and, where needed, the lazy check."""
        return bool(self.row_mask(st)[t]) and (not self.needs_verify(st, t) or self.verify(st, t))

    # ------------------------------------------------------------------ state update
    def advance(self, st: ParseState, t: int) -> None:
        """Apply token id t (assumed allowed) to st in place."""
        info = self.info[t]
        k = info.kind
        st.tokens.append(self.tokens[t])
        if k in (ATOM, CLOSE):
            st.kek_pending = False
        if st.kek_after:
            if k == RING:
                st.kek_pending = st.kek_after.get(t, False)
            st.kek_after = {}
        if k == ATOM:
            i, c = len(st.rem), st.cur
            st.rem.append(info.cap)
            st.arom.append(info.aromatic)
            st.ab.append(0)
            st.anbrs.append([])
            st.nbrs.append(set())
            st.atoms.append(info)
            st.val.append(0)
            st.multi.append(0)
            if c >= 0 and st.last != START:  # bonded to the current atom c
                order = st.bond or 1
                if not st.bond and info.aromatic and st.arom[c]:
                    st.ab[c] += 1
                    st.ab[i] += 1
                    st.anbrs[c] = st.anbrs[c] + [i]  # copy-on-write (copy); atom i's are new
                    st.anbrs[i].append(c)
                _add_bond_order(st, c, i, order)
                st.rem[c] -= _cost(st.arom[c], order)
                st.rem[i] -= _cost(info.aromatic, order)
                st.nbrs[c] = st.nbrs[c] | {i}
                st.nbrs[i].add(c)
            st.cur, st.bond = i, 0
        elif k == BOND:
            st.bond, st.bond_ring_ok = info.order, st.last in (ATOM, RING)
        elif k == OPEN:
            st.stack.append(st.cur)
        elif k == CLOSE:
            st.cur = st.stack.pop()
        elif k == RING:
            c = st.cur
            ring = st.rings.pop(info.label, None)
            if ring is None:
                units = _cost(st.arom[c], st.bond or 1)
                st.rem[c] -= units
                st.rings[info.label] = (c, st.bond, units)
            else:
                a, o, reserved = ring
                order = st.bond or o or 1
                if not (st.bond or o) and st.arom[a] and st.arom[c]:
                    st.ab[a] += 1
                    st.ab[c] += 1
                    st.anbrs[a] = st.anbrs[a] + [c]  # copy-on-write (copy)
                    st.anbrs[c] = st.anbrs[c] + [a]
                _add_bond_order(st, a, c, order)
                st.rem[c] -= _cost(st.arom[c], order)
                st.rem[a] -= _cost(st.arom[a], order) - reserved
                st.nbrs[a] = st.nbrs[a] | {c}
                st.nbrs[c] = st.nbrs[c] | {a}
            st.bond = 0
        st.last = k


def _add_bond_order(st: ParseState, a: int, b: int, order: int) -> None:
    """Book a bond of `order` between atoms a and b for the kekulization check (`order` 1 for an
    aromatic bond)."""
    st.val[a] += order
    st.val[b] += order
    if order >= 2:
        st.multi[a] = max(st.multi[a], order)
        st.multi[b] = max(st.multi[b], order)


# ------------------------------------------------------------------ kekulization
# Implicit valences of the organic subset (OpenSMILES), for an aromatic atom's implicit H.
_ORGANIC_VALENCES = {5: (3,), 6: (4,), 7: (3, 5), 15: (3, 5), 8: (2,), 16: (2, 4, 6), 9: (1,), 17: (1,), 35: (1,), 53: (1,)}


def _needs_double(info: TokenInfo, degree: int, val: int, multi: int) -> bool:
    """Whether an aromatic atom (with at least one aromatic bond) must get a double bond in the
    kekulé structure: partialsmiles' rule (valence.NeedsDblBond), which agrees with RDKit's on the
    atoms a SMILES model writes. `degree` neighbours, `val` bond orders summed (aromatic 1),
    `multi` the highest non-aromatic bond order. An exocyclic double bond takes the atom's π bond
    (c=O) except on a neutral N with three connections or S with four (n=O, s=O written as
    N-oxide / sulfoxide); otherwise it depends on element, charge and connections (H included):
    c always, pyridine-type n yes, pyrrole-type n / [nH] / o / s no, [n+] with 3 yes."""
    if info.hcount >= 0:
        h = info.hcount
    else:  # implicit H: up to the next organic valence, one fewer for the aromatic π bond
        vals = _ORGANIC_VALENCES.get(info.elem, ())
        h = next((v for v in vals if val <= v), val) - val
        h = h - 1 if h > 0 else h
    deg, z, chg = degree + h, info.elem, info.charge
    if multi == 2:
        return chg == 0 and ((z == 7 and deg == 3) or (z == 16 and deg == 4))
    if multi > 2:
        return False
    if z == 6:
        return not (deg == 3 and chg in (1, -1))
    if z in (5, 7, 15, 33, 51, 83):
        return not ((chg == 0 and (deg == 3 or deg > 4)) or (chg == -1 and deg == 2) or (chg == 1 and deg > 3))
    if z in (8, 16, 34, 52):
        return not ((chg == 0 and (deg in (2, 4) or deg > 5)) or (chg in (1, -1) and (deg in (3, 5) or deg > 6)))
    return True


MATCH_STEPS = 20_000  # search steps before _matching gives up (None: the caller asks partialsmiles)


def _matching(need: set[int], anbrs: list[list[int]]) -> bool | None:
    """Whether the atoms in `need` can each get one double bond along their aromatic bonds to
    each other (a perfect matching of `need`): depth-first, always extending the atom with the
    fewest free partners, which settles the chains and fused rings of drug-like systems in a
    few steps. None after MATCH_STEPS steps (never seen on decoded rows)."""
    if len(need) % 2:
        return False
    adj = {a: [b for b in anbrs[a] if b in need] for a in need}
    matched: set[int] = set()
    steps = 0

    def extend() -> bool | None:
        nonlocal steps
        steps += 1
        if steps > MATCH_STEPS:
            return None
        best, options = -1, None
        for a in adj:
            if a in matched:
                continue
            free = [b for b in adj[a] if b not in matched]
            if not free:
                return False
            if options is None or len(free) < len(options):
                best, options = a, free
                if len(free) == 1:
                    break
        if options is None:
            return True
        matched.add(best)
        for b in options:
            matched.add(b)
            found = extend()
            if found is not False:
                return found
            matched.discard(b)
        matched.discard(best)
        return False

    return extend()


def kekulizable(st: ParseState, incomplete: set[int], extra: tuple[int, int, int, int] | None = None) -> bool | None:
    """Whether every aromatic system of st (atoms joined by aromatic bonds) with none of its
    atoms in `incomplete` can be kekulized, each atom taken as written (`extra` = (atom, more
    neighbours, more bond order, explicit bond order) adds a substituent to one atom). Systems
    with an incomplete atom can still change and are not judged, as partialsmiles does. None when
    the matching search gave up. O(atoms) bookkeeping plus the matching per complete system."""
    seen: set[int] = set()
    for a0, nbrs in enumerate(st.anbrs):
        if not nbrs or a0 in seen:
            continue
        system, todo = {a0}, [a0]
        while todo:
            for b in st.anbrs[todo.pop()]:
                if b not in system:
                    system.add(b)
                    todo.append(b)
        seen |= system
        if system & incomplete:
            continue
        need = set()
        for a in system:
            deg, val, multi = len(st.nbrs[a]), st.val[a], st.multi[a]
            if extra is not None and extra[0] == a:
                deg, val, multi = deg + extra[1], val + extra[2], max(multi, extra[3])
            if _needs_double(st.atoms[a], deg, val, multi):
                need.add(a)
        if need:
            found = _matching(need, st.anbrs)
            if found is not True:
                return found
    return True


def rdkit_valid(smiles: str) -> bool:
    """RDKit parses and sanitizes the string into at least one atom."""
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles) if smiles else None
    return mol is not None and mol.GetNumAtoms() > 0


def closure_kekulizable(prefix: str, can_take_more: bool) -> bool:
    """Can the aromatic system that the last ring-closure token of `prefix` completes still be
    kekulized? partialsmiles parses the prefix; the current atom is taken as complete as written,
    or (when it has free valence) with an exocyclic double bond or one more substituent — the
    three ways the string can go on that change its π count. Syntax is the grammar's job: a
    partialsmiles syntax complaint does not count against the token."""
    variants = [prefix] + ([prefix + "(=C)", prefix + "(C)"] if can_take_more else [])
    return any(_kekulizable_now(v) for v in variants)


def partial_ok(prefix: str) -> bool:
    """partialsmiles (partial mode) accepts `prefix` as the start of a valid SMILES: only its
    kekulization verdict counts (syntax and valence are the grammar's job)."""
    import partialsmiles as ps

    try:
        ps.ParseSmiles(prefix, partial=True, rulesToIgnore=0x7F)
    except ps.KekulizationFailure:
        return False
    except Exception:  # noqa: BLE001 - other complaints: not this check's call
        return True
    return True


def _kekulizable_now(s: str) -> bool:
    from partialsmiles import smiparser

    sp = smiparser.SmilesParser(partial=False, rulesToIgnore=0x7F)
    sp.smi, sp.N = s, len(s)
    state = smiparser.State()
    try:
        while state.idx < sp.N:
            sp.parse_token(state)
        sp.setImplicitHydrogenCount(state)  # non-partial: the current atom gets implicit H as written
    except Exception:  # noqa: BLE001 - partialsmiles syntax/valence complaints: not this check's call
        return True
    cur = state.prev[-1]
    # atoms still waiting for bonds: open ring bonds, branch points below the current atom
    sp.incompleteAtoms = {a for a, _ in state.openbonds.values()} | {a for a in state.prev[:-1] if a is not None and a is not cur}
    try:
        return sp.validateKekulization(state.mol, state) is None
    except Exception:  # noqa: BLE001
        return True


# ------------------------------------------------------------------ string-level API
@lru_cache(maxsize=64)
def _grammar_for(tokens: tuple[str, ...]) -> Grammar:
    return Grammar(list(SPECIAL_TOKENS) + [t for t in tokens if t not in SPECIAL_TOKENS])


def first_forbidden(smiles: str) -> int | None:
    """Index of the first token of `smiles` the mask would forbid (len(tokens) when it forbids
    `<eos>` at the end), None when every token and the final `<eos>` are allowed."""
    toks = tokenize(smiles)
    g = _grammar_for(tuple(sorted(set(toks))))
    st = ParseState()
    for i, tok in enumerate(toks):
        t = g.tokens.index(tok)
        if not g.check(st, t):
            return i
        g.advance(st, t)
    return None if g.check(st, g.eos_id) else len(toks)
