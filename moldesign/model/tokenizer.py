"""Atom-level regex SMILES tokenizer and the vocabulary that maps tokens to ids.

Tokens: bracket atoms (`[nH]`, `[C@@H]`, `[O-]`) are one token; two-letter organic-subset atoms
`Cl` and `Br` are one token; `%NN` two-digit ring closures are one token; every other character
(atoms B C N O P S F I b c n o s p, bonds, branches, ring digits, stereo `/ \\ @`, `.`) is one token.
Tokenization is lossless: `"".join(tokenize(s)) == s` for every string it accepts.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

# Order matters: alternatives are tried left to right at each position.
SMILES_REGEX = re.compile(
    r"(\[[^\[\]]+\]"  # bracket atom: [nH], [C@@H], [NH3+], [2H]
    r"|Br|Cl"  # two-letter organic-subset atoms before their one-letter prefixes
    r"|%\d{2}"  # two-digit ring closure
    r"|[BCNOPSFIbcnosp]"  # organic-subset atoms (aromatic lower case)
    r"|[=#$:~\-+\\/().*@]"  # bonds, branches, stereo, charge outside brackets, wildcard
    r"|\d)"  # one-digit ring closure
)

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)


class TokenizeError(ValueError):
    """A SMILES contains characters the tokenizer regex does not cover."""


class UnknownTokenError(KeyError):
    """Tokens absent from the vocabulary (the message lists them)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want a plain line
        return str(self.args[0])


def tokenize(smiles: str) -> list[str]:
    """Split a SMILES into atom-level tokens; raise TokenizeError naming uncovered characters."""
    tokens = SMILES_REGEX.findall(smiles)
    if sum(map(len, tokens)) != len(smiles):
        # find the first position the regex skipped, to name it in the error
        pos, bad = 0, []
        for m in SMILES_REGEX.finditer(smiles):
            if m.start() != pos:
                bad.append(smiles[pos : m.start()])
            pos = m.end()
        if pos != len(smiles):
            bad.append(smiles[pos:])
        raise TokenizeError(f"cannot tokenize {smiles!r}: unsupported characters {bad}")
    return tokens


@dataclass
class Vocabulary:
    """Token ↔ id map. Ids 0..3 are always <pad> <bos> <eos> <unk>."""

    tokens: list[str]
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    pad_id = property(lambda self: 0)
    bos_id = property(lambda self: 1)
    eos_id = property(lambda self: 2)
    unk_id = property(lambda self: 3)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, smiles: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """Vocabulary of every token seen at least `min_count` times, most frequent first."""
        counts: Counter[str] = Counter()
        for s in smiles:
            counts.update(tokenize(s))
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(list(SPECIAL_TOKENS) + kept, {t: counts[t] for t in kept})

    def encode(self, smiles: str, max_len: int | None = None, allow_unk: bool = False) -> list[int]:
        """`<bos> tokens <eos>` ids. max_len counts the whole sequence (with bos/eos).

        Unknown tokens raise UnknownTokenError listing them, unless allow_unk maps them to <unk>.
        A sequence longer than max_len raises ValueError.
        """
        tokens = tokenize(smiles)
        missing = [t for t in tokens if t not in self.index]
        if missing and not allow_unk:
            raise UnknownTokenError(
                f"{smiles!r} has tokens not in the vocabulary: {sorted(set(missing))}"
            )
        ids = [self.bos_id] + [self.index.get(t, self.unk_id) for t in tokens] + [self.eos_id]
        if max_len is not None and len(ids) > max_len:
            raise ValueError(f"{smiles!r} is {len(ids)} tokens with <bos>/<eos>; max_len is {max_len}")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids → string: stops at the first <eos>, skips <bos>/<pad>, keeps <unk> visible."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            out.append(self.tokens[i])
        return "".join(out)

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(list(d["tokens"]), dict(d.get("counts", {})))
