"""Why constrained rows dead-end: prints JSON (counts) and, with --show, one line per dead end.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/deadend_bench.py --n 500 [--model models/moldesign-moses.pt] \
        [--backtrack 32] [--show]

Samples n prior decodes at T = 1 with the grammar (same latents and seed as bench/decoding_bench.py),
and for every row that ends `dead_end`:
* which check emptied its mask: per token the structural rule passed, the one that refused it
  (budget, lookahead, partial, kekulize, eos) — the row is classified by the set of refusing checks;
* how far back the unrecoverable decision was: the longest prefix of the row that still has a
  completion, found by a depth-first search over the grammar alone (no model; closing tokens
  tried first, a node limit per prefix) within the row's remaining length; `back` = tokens from
  that prefix to the dead end (unknown when the search gave up);
* where it ended: near max_len (within 6 tokens: the model wandered) or earlier.
"""
from __future__ import annotations

import argparse
import collections
import json

import numpy as np
import torch

from moldesign.decoding.grammar import ATOM, CLOSE, EOS_KIND, RING, Grammar, ParseState


def refusals(g: Grammar, st: ParseState, remaining: int) -> collections.Counter:
    """Per token the structural rule allows: which check refuses it (or 'ok')."""
    out = collections.Counter()
    budget = g.budget_mask(st, remaining)
    for t in range(len(g.tokens)):
        if (t < 4 and t != g.eos_id) or not g.allowed(st, t):  # specials and structural refusals are not the question
            continue
        if budget is not None and not budget[t]:
            out["budget"] += 1
            continue
        if g.needs_verify(st, t):
            check, ok = g._verify(st, t)
            out[check if not ok else "ok"] += 1
        else:
            out["ok"] += 1
    return out


def completable(g: Grammar, st: ParseState, remaining: int, order: list[int], limit: int) -> bool | None:
    """Depth-first search over the grammar: can st be finished (<eos> included) in `remaining`
    tokens? None when the node limit ran out first."""
    nodes = 0

    def dfs(s: ParseState, rem: int) -> bool | None:
        nonlocal nodes
        nodes += 1
        if nodes > limit:
            return None
        if g.check(s, g.eos_id):
            return True
        if rem <= 1:
            return False
        budget = g.budget_mask(s, rem - 1)
        gave_up = False
        for t in order:
            if (budget is not None and not budget[t]) or not g.check(s, t):
                continue
            s2 = s.copy()
            g.advance(s2, t)
            r = dfs(s2, rem - 1)
            if r:
                return True
            gave_up |= r is None
            if nodes > limit:
                return None
        return None if gave_up else False

    return dfs(st, remaining)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/moldesign-moses.pt")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=2000, help="search nodes per prefix")
    ap.add_argument("--max-back", type=int, default=24)
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--backtrack", type=int, default=0, help="backjumping depth (decoding.sample)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from moldesign.model import checkpoint
    from moldesign.decoding.search import sample
    from moldesign.decoding.sampling import draw_conditions, grammar_for, scale

    b = checkpoint.load(args.model, torch.device("cpu"))
    b.model.eval()
    g = grammar_for(b)
    rng = np.random.default_rng(args.seed)
    props = draw_conditions(b, args.n, rng)
    z = torch.from_numpy(rng.standard_normal((args.n, b.config.latent_dim)).astype(np.float32))
    d = sample(b.model.decoder, z, scale(b, props), b.config.max_len, 1.0, 0, g, torch.Generator().manual_seed(args.seed),
               backtrack=args.backtrack)
    # closing moves first, then the common atoms: finds a completion fast when there is one
    kinds = {EOS_KIND: 0, RING: 1, CLOSE: 2, ATOM: 3}
    order = sorted(range(4, len(g.tokens)), key=lambda t: (kinds.get(g.info[t].kind, 4), len(g.tokens[t])))
    by_check, by_back, by_where = collections.Counter(), collections.Counter(), collections.Counter()
    rows = []
    for ids, status in zip(d.ids, d.status):
        if status != "dead_end":
            by_where[status] += 1
            continue
        states = [ParseState()]
        for t in ids:
            s = states[-1].copy()
            g.advance(s, t)
            states.append(s)
        n = len(ids)
        left = b.config.max_len - 1  # tokens a row may emit, <eos> included
        ref = refusals(g, states[-1], left - n - 1)
        ref.pop("ok", None)
        check = "+".join(sorted(ref)) or "structural"
        back = None
        for k in range(n, max(n - args.max_back, 0) - 1, -1):
            r = completable(g, states[k], left - k, order, args.limit)
            if r:
                back = n - k
                break
            if r is None:
                break
        where = "near_max_len" if n >= b.config.max_len - 7 else "shorter"
        by_check[f"{where}:{check}"] += 1
        by_back[f"{where}:{'unknown' if back is None else min(back, 12)}"] += 1
        by_where["dead_end_" + where] += 1
        rows.append((where, check, back, n, b.vocab.decode(ids)))
    out = {"model": args.model, "n": args.n, "rows": dict(sorted(by_where.items())),
           "emptied_by": dict(sorted(by_check.items())), "tokens_back_to_last_completable": dict(sorted(by_back.items())),
           "lazy_rejects": g.verify_rejects, "lazy_calls": g.verify_calls}
    if args.show:
        for r in rows:
            print(*r, sep="\t")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
