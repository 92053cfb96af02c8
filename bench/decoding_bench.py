"""Constrained vs unconstrained decoding, greedy vs beam reconstruction: prints JSON.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/decoding_bench.py --n-prior 1000 --n-recon 300 \
        --test /work/main/data/moses/test.parquet [--model models/moldesign-moses.pt] [--fcd]

1. raw validity of n prior decodes (same latents and conditions both ways) at T = 1 and T = 0,
   constrained vs unconstrained, with decode throughput (decodes/s, batch 1,000, same run) and
   what remains invalid: per decode status (eos / dead_end / max_len) and, for finished strings
   RDKit rejects, a partialsmiles diagnosis (kekulization, unclosed ring, branch, valence);
2. exact reconstruction of n test molecules: greedy vs beam 3/5/10 (constrained), with wall time;
3. SNN (and FCD with --fcd) of the valid T = 1 samples against the test molecules, both ways;
4. (--backtrack-n) the first N latents at T = 1 and T = 0, every variant in one process:
   unconstrained, the mask alone, and mask + backjumping at each --backtrack-depth with jumps at
   dead ends only (refused_jump 1) or also at lazily refused picks the model gave > 0.5 (0.5),
   the same with session 7's rules (`_old_rules`; at T = 1 with refused jumps, at T = 0 without:
   a sampled jump forbade the token it re-decided, a greedy row restarted with any first token),
   and at T = 0 `T0_decode_default`, what greedy commands run (sampling.decode: backjumping, the
   first-token floor, the beam rescue of rows left unfinished): validity, seconds, cost per decode
   (÷ unconstrained seconds), valid molecules/s, rows that jumped and jumps, the fraction of rows
   valid with a first token that starts < 0.1% of the test SMILES; at T = 1 SNN (and FCD with
   --fcd) on the first k valid molecules of each,
   k equal across variants (FCD falls with the sample size). --repeats R times each variant R
   times in rounds and reports the median (timings drift ±10% on a shared machine).
Lazy checks are reported as calls and refusals per check (lookahead, aromatic, partial, kekulize,
eos), and the constrained dead ends by whether the row ended near max_len (the model wandered) or
earlier. --n-recon 0 skips 2; --beams "" runs greedy only.

Decodes run through one sample() call with 1,000 slots (continuous batching); --chunked decodes
each 1,000 latents in a call of their own, as before session 9.

Measured (session 9, one thread, 1,000 slots, median of 3 rounds; runs/s9/final_zinc5k.json):

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/decoding_bench.py --model models/moldesign-zinc.pt \
        --n-prior 5000 --n-recon 1000 --beams 5 --backtrack-n 5000 --backtrack-depth 80 --repeats 3 --fcd \
        --test data/zinc250k/test.parquet

    ZINC model, 5,000 latents, T = 1  valid    cost/decode  valid/s  rare start  SNN    FCD (2,509 valid each)
    unconstrained                     0.502    1.00         256      0.0024      0.305  4.66
    mask                              0.772    1.81         218      0.0054      0.298  5.52
    mask + jumps, refused 0.5         0.998    3.13         163      0.0064      0.296  5.13
    mask + jumps at dead ends         0.9996   2.86         179      0.0076      0.295  5.61
    the first, session 7's rules      0.999    2.71         188      0.0768      0.294  5.46
    T = 0: 0.597 / 0.830 (1.64) / backjumping with the first-token floor 0.948 (2.76) /
    T0_decode_default (+ beam rescue) 0.996 (4.27; 3.51 with session 9's faster beam, runs/s9/final2_zinc5k.json,
    where the other ratios of the same decodes came out up to 20% higher: machine drift)
    reconstruction of 1,000 ZINC test molecules: greedy 0.599 (unconstrained 0.598), beam-5 0.660 (16.0 s vs 5.9 s)
    MOSES model (session 7, --n-prior 1000 --backtrack-depth 32,64, MOSES test), T = 1, whole prefix:
    0.668 / 0.860 (1.60) / 1.000 (2.23) / 1.000 (2.32); FCD (668 each) 2.79 / 3.07 / 3.34 / 3.37
"""
from __future__ import annotations

import argparse
import collections
import json
import time

import numpy as np
import pandas as pd
import torch


def diagnose(s: str) -> str:
    import partialsmiles as ps

    try:
        ps.ParseSmiles(s, partial=False, rulesToIgnore=0x7F)
    except ps.KekulizationFailure:
        return "kekulization"
    except ps.ValenceError:
        return "valence"
    except ps.SMILESSyntaxError as e:
        msg = str(e)
        return "ring_open" if "ring" in msg else "branch" if "branch" in msg or "parenthes" in msg else "syntax"
    except Exception:  # noqa: BLE001
        return "other"
    return "other"  # partialsmiles accepts, RDKit does not (e.g. aromatic atom outside a ring)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/moldesign-moses.pt")
    ap.add_argument("--test", default="/work/main/data/moses/test.parquet")
    ap.add_argument("--n-prior", type=int, default=1000)
    ap.add_argument("--n-recon", type=int, default=300)
    ap.add_argument("--beams", default="3,5,10")
    ap.add_argument("--fcd", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backtrack-n", type=int, default=300,
                    help="also decode the first N latents at T = 1 with bounded backtracking (0: skip)")
    ap.add_argument("--backtrack-depth", default="32", help="comma-separated depths (max_len - 1 or more: the whole prefix)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="time every backjumping-section variant this many times, in rounds; report the median")
    ap.add_argument("--chunked", action="store_true",
                    help="decode each 1,000 latents in a call of their own, a batch that shrinks as its rows finish "
                         "(the rule before session 9), instead of 1,000 slots for all of them (continuous batching)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from moldesign.model import checkpoint
    from moldesign.decoding.search import sample
    from moldesign.decoding.grammar import rdkit_valid
    from moldesign.screening.metrics import (canonical_valid, chemnet_stats, fcd_available, fingerprints, frechet_distance,
                                             reconstruction_table, snn, valid_mols)
    from moldesign.decoding.sampling import decode as decode_latents, draw_conditions, grammar_for, scale
    from moldesign.model.tokenizer import tokenize

    bundle = checkpoint.load(args.model, torch.device("cpu"))
    bundle.model.eval()
    g = grammar_for(bundle)
    rng = np.random.default_rng(args.seed)
    n = args.n_prior
    props = draw_conditions(bundle, n, rng)
    z = torch.from_numpy(rng.standard_normal((n, bundle.config.latent_dim)).astype(np.float32))
    cond = scale(bundle, props)
    out: dict = {"model": args.model, "n_prior": n, "threads": 1, "chunked": args.chunked}

    def decode_rows(zs, cs, T, gram, gen, **kw):
        """sample() over latents zs (m, Z) at batch 1,000 → (strings, statuses, jumps per row)."""
        parts = [(0, len(zs))] if not args.chunked else [(i, min(i + 1000, len(zs))) for i in range(0, len(zs), 1000)]
        strings, status, backs = [], [], []
        for a, b in parts:
            d = sample(bundle.model.decoder, zs[a:b], cs[a:b], bundle.config.max_len, T, 0, gram, gen,
                       batch_size=None if args.chunked else 1000, **kw)
            strings += [bundle.vocab.decode(r) for r in d.ids]
            status += d.status
            backs += d.backtracks
        return strings, status, backs

    samples = {}
    for T in (1.0, 0.0):
        for constrained in (False, True):
            calls0, rej0 = dict(g.verify_calls), dict(g.verify_rejects)
            gen = torch.Generator().manual_seed(args.seed)
            t0 = time.time()
            strings, status, _ = decode_rows(z, cond, T, g if constrained else None, gen)
            dt = time.time() - t0
            ok = [rdkit_valid(s) for s in strings]
            why = collections.Counter(
                st if st != "eos" else diagnose(s) for s, st, v in zip(strings, status, ok) if not v)
            key = f"T{T:g}_{'constrained' if constrained else 'unconstrained'}"
            out[key] = {"valid": float(np.mean(ok)), "seconds": round(dt, 2), "decodes_per_s": round(n / dt, 1),
                        "invalid_breakdown": {k: v / n for k, v in sorted(why.items())},
                        "lazy_checks": {k: g.verify_calls[k] - calls0[k] for k in calls0},
                        "lazy_rejects": {k: g.verify_rejects[k] - rej0[k] for k in rej0}}
            if constrained:  # where the dead ends are: at the length budget (the model wandered) or not
                ends = [len(tokenize(s)) for s, st in zip(strings, status) if st != "eos"]
                long = sum(x >= bundle.config.max_len - 6 for x in ends)
                out[key]["dead_end_rows"] = {"near_max_len": long / n, "shorter": (len(ends) - long) / n}
            samples[key] = strings
            print(json.dumps({key: out[key]}), flush=True)
    out["cost_ratio_T1"] = round(out["T1_constrained"]["seconds"] / out["T1_unconstrained"]["seconds"], 2)
    out["cost_ratio_T0"] = round(out["T0_constrained"]["seconds"] / out["T0_unconstrained"]["seconds"], 2)
    out["mask_cache_entries"] = len(g._cache)
    # greedy is deterministic: per latent, does the mask break a row the free decoder got right,
    # and are the rows it leaves invalid ones the free decoder got wrong too?
    pairs = collections.Counter(
        ("constrained_valid" if rdkit_valid(c) else "constrained_invalid")
        + ("/unconstrained_valid" if rdkit_valid(u) else "/unconstrained_invalid") + ("/same" if c == u else "/different")
        for c, u in zip(samples["T0_constrained"], samples["T0_unconstrained"]))
    out["T0_per_latent"] = {k: v / n for k, v in sorted(pairs.items())}
    print(json.dumps({"T0_per_latent": out["T0_per_latent"]}), flush=True)
    test = pd.read_parquet(args.test)["smiles"].astype(str).tolist()
    ref = [test[i] for i in np.random.default_rng(args.seed).choice(len(test), min(len(test), 5000), replace=False)]
    ref_fps = fingerprints(valid_mols(ref))
    ref_stats = chemnet_stats(ref) if args.fcd and fcd_available() else None

    # a token that starts < 0.1% of the test SMILES: rescued rows that start with one are the
    # model pushed off its own first choice ([O-]CC…, PC…), not a molecule it meant to write
    starts = collections.Counter(tokenize(s)[0] for s in test if s)
    rare_start = {t for t in bundle.vocab.tokens if starts[t] < 0.001 * len(test)}

    def validity(strings) -> dict:
        """Fraction valid, and fraction valid with a rare first token, of the decoded strings."""
        ok = [rdkit_valid(x) for x in strings]
        return {"valid": float(np.mean(ok)), "valid_with_rare_first_token":
                sum(1 for x, v in zip(strings, ok) if v and tokenize(x)[0] in rare_start) / len(strings)}

    def distribution(strings, k=None) -> dict:
        """SNN (and FCD with --fcd) of the first k valid canonical strings: equal k across variants,
        since FCD falls with the sample size (a variant with more valid molecules would look closer)."""
        gen_ = canonical_valid(strings)[:k]
        d = {"n_valid_scored": len(gen_), "snn": snn(valid_mols(gen_), ref_fps)}
        if ref_stats is not None:
            d["fcd"] = frechet_distance(chemnet_stats(gen_), ref_stats)
        return d

    if args.backtrack_n:
        # the first m latents, every variant in this one process: unconstrained, the mask alone, and
        # mask + backjumping at each depth, with jumps at refused picks (refused_jump 0.5, the
        # sampling default) or only at dead ends (1.0); cost = seconds / unconstrained seconds
        m = min(args.backtrack_n, n)
        res, t1_strings = {}, {}
        # (grammar, depth, refused_jump, old): `old` is session 7's rules, to measure against: a
        # sampled jump forbids the token it re-decides (as greedy ones do), and a greedy row may
        # restart with any first token (first_token_floor 0)
        depths = [int(x) for x in args.backtrack_depth.split(",") if x.strip()]
        variants = [(None, 0, 1.0, False), (g, 0, 1.0, False)] + [(g, d_, rj, False) for d_ in depths for rj in (1.0, 0.5)] \
            + [(g, d_, rj, True) for d_ in depths for rj in (1.0, 0.5)]
        for T in (1.0, 0.0):
            times: dict[str, list[float]] = {}
            for rep in range(args.repeats):  # every variant once per round: machine drift hits all alike
                for gram, depth, rj, old in variants:
                    if old and (rj < 1) == (T <= 0):  # old rules: T = 1 with refused jumps, greedy without
                        continue
                    gen = torch.Generator().manual_seed(args.seed)
                    t0 = time.time()
                    strings, _, backs = decode_rows(z[:m], cond[:m], T, gram, gen, backtrack=depth, refused_jump=rj,
                                                    ban_when_sampling=old, first_token_floor=0.0 if old else None)
                    key = (f"T{T:g}_" + ("unconstrained" if gram is None else "mask" if not depth
                                         else f"depth{depth}_refused_jump{rj:g}" + ("_old_rules" if old else "")))
                    times.setdefault(key, []).append(time.time() - t0)
                    if rep == 0:  # same seed every round: the same strings
                        res[key] = {**validity(strings), "rows_backtracked": sum(x > 0 for x in backs) / m,
                                    "backtrack_steps": sum(backs)}
                        if T > 0:
                            t1_strings[key] = strings
                if T <= 0:  # what greedy commands run: sampling.decode, backjumping + the beam rescue
                    t0 = time.time()
                    step = 1000 if args.chunked else m
                    strings = [x for i in range(0, m, step) for x in decode_latents(bundle, z[i:i + step], props[i:i + step], 0.0)]
                    times.setdefault("T0_decode_default", []).append(time.time() - t0)
                    if rep == 0:
                        res["T0_decode_default"] = validity(strings)
            base = float(np.median(times[f"T{T:g}_unconstrained"]))
            for key, ts in times.items():
                dt = float(np.median(ts))
                res[key].update({"seconds": round(dt, 2), "seconds_each": [round(x, 2) for x in ts],
                                 "cost_per_decode": round(dt / base, 2), "valid_per_s": round(res[key]["valid"] * m / dt, 1)})
                print(json.dumps({key: res[key]}), flush=True)
        k = min(len(canonical_valid(x)) for x in t1_strings.values())
        for key, strings in t1_strings.items():
            res[key].update(distribution(strings, k))
            print(json.dumps({key: {m_: res[key][m_] for m_ in ("n_valid_scored", "snn", "fcd") if m_ in res[key]}}), flush=True)
        out["constrained_backtracking"] = {"n": m, **res}

    k = min(len(canonical_valid(samples[key])) for key in ("T1_unconstrained", "T1_constrained"))
    for key in ("T1_unconstrained", "T1_constrained"):
        out[key].update(distribution(samples[key], k))
    print(json.dumps({"distribution": {k: {m: out[k].get(m) for m in ("snn", "fcd")}
                                       for k in ("T1_unconstrained", "T1_constrained")}}), flush=True)

    if not args.n_recon:
        print(json.dumps(out, indent=1))
        return
    picked = [test[i] for i in np.random.default_rng(args.seed + 1).choice(len(test), args.n_recon, replace=False)]
    recon = {}
    beams = [int(b) for b in args.beams.split(",") if b.strip()]  # --beams "": greedy only
    for constrained, beam in [(False, 0), (True, 0)] + [(True, b) for b in beams]:
        t0 = time.time()
        table = reconstruction_table(bundle, picked, constrained=constrained, beam=beam)
        key = f"{'beam' + str(beam) if beam else 'greedy'}_{'constrained' if constrained else 'unconstrained'}"
        recon[key] = {"exact": float(table["exact"].mean()), "seconds": round(time.time() - t0, 2),
                      "valid": float(np.mean([isinstance(o, str) and rdkit_valid(o) for o in table["output"]]))}
        print(json.dumps({key: recon[key]}), flush=True)
    out["reconstruction"] = {"n": args.n_recon, **recon}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
