"""Screening throughput and memory; prints JSON.

    python bench/screen_bench.py [--n 100000] [--workers 1,2] [--rows-small 100000]
                                 [--rows-large 1000000] [--rss-workers 2] [--chunk-size 1000]
                                 [--part all|throughput|memory]

- `plain_loop`: a single-process RDKit loop computing the same columns as `screen` (read .smi,
  standardize, canonical SMILES, 5 properties, QED, SA, rotatable bonds, PAINS, Brenk, Lipinski,
  Veber; write CSV with the csv module) — the baseline, measured in the same run;
- `screen`: `moldesign.screening.screen_file` on the same n molecules with 1 and 2 workers;
- `memory`: peak RSS of the main process and of the largest worker screening `rows_small` and
  `rows_large` rows (MOSES SMILES repeated): flat streaming means the two are about equal. When
  `rows_small` equals `n` and `rss_workers` is one of `workers`, that throughput run is the small
  memory point (it is the same measurement).
`--part` runs only the throughput comparison (needs an idle machine) or only the memory part
(peak RSS does not depend on what else the machine runs), so the two can be scheduled separately.
Every measurement runs in a fresh subprocess so peak RSS is its own. Molecules: MOSES test
(data/moses/test.parquet) when prepared, else the committed 5,000-molecule sample, cycled.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def source_smiles() -> tuple[list[str], str]:
    from moldesign.data import load_moses, load_sample, moses_table_path

    if moses_table_path("test").exists():
        return load_moses("test")["smiles"].tolist(), "MOSES test"
    return load_sample()["smiles"].tolist(), "data/moses_sample.csv"


def write_smi(path: Path, smiles: list[str], n: int) -> None:
    with open(path, "w") as f:
        for s in itertools.islice(itertools.cycle(smiles), n):
            f.write(s + "\n")


def plain_loop(src: Path, out: Path) -> int:
    """The baseline: the same chemistry, no pool, no pandas, no chunking."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolDescriptors

    from moldesign import chem
    from moldesign.screening.screen import parent_molecule

    n = 0
    with open(src) as f, open(out, "w", newline="") as g, rdBase.BlockLogs():
        w = csv.writer(g)
        w.writerow(["input", "smiles", "mw", "logp", "hbd", "hba", "tpsa", "qed", "sa", "rotb", "pains",
                    "brenk", "lipinski", "veber"])
        for line in f:
            s = line.strip()
            n += 1
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                w.writerow([s])
                continue
            mol, _ = parent_molecule(mol)
            p = chem.mol_scores(mol)
            lip, veb = chem.lipinski_violations(mol), chem.veber_violations(mol)
            w.writerow([s, Chem.MolToSmiles(mol), *p.values(), rdMolDescriptors.CalcNumRotatableBonds(mol),
                        "; ".join(chem.structural_alerts(mol, "pains")), "; ".join(chem.structural_alerts(mol, "brenk")),
                        chem.lipinski_pass(lip), not veb])
    return n


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process: prints its JSON line."""
    t0 = time.perf_counter()
    if args.child == "plain":
        rows = plain_loop(Path(args.src), Path(args.out))
    else:
        from moldesign.screening.screen import screen_file

        rows = screen_file(args.src, args.out, workers=args.child_workers, chunk_size=args.chunk_size)["rows"]
    seconds = time.perf_counter() - t0
    kb = 1024  # ru_maxrss is in KiB on Linux
    print(json.dumps({"rows": rows, "seconds": round(seconds, 2), "mol_per_s": round(rows / seconds, 1),
                      "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb, 1),
                      "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb, 1)}))


def run_child(kind: str, src: Path, out: Path, workers: int, chunk_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--src", str(src), "--out", str(out),
           "--child-workers", str(workers), "--chunk-size", str(chunk_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="molecules for the throughput comparison")
    ap.add_argument("--workers", default="1,2", help="worker counts to time screen with")
    ap.add_argument("--rows-small", type=int, default=100_000)
    ap.add_argument("--rows-large", type=int, default=1_000_000)
    ap.add_argument("--rss-workers", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--part", choices=["all", "throughput", "memory"], default="all")
    ap.add_argument("--child", choices=["plain", "screen"], help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    smiles, source = source_smiles()
    report = {"source": source, "n": args.n, "chunk_size": args.chunk_size, "cpu_count": os.cpu_count(),
              "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "n.smi"
        write_smi(src, smiles, args.n)
        if args.part in ("all", "throughput"):
            report["plain_loop"] = run_child("plain", src, tmp / "plain.csv", 1, args.chunk_size)
            report["screen"] = {}
            for w in (int(x) for x in args.workers.split(",")):
                r = run_child("screen", src, tmp / f"screen{w}.csv", w, args.chunk_size)
                r["speedup_vs_plain"] = round(r["mol_per_s"] / report["plain_loop"]["mol_per_s"], 2)
                report["screen"][f"workers_{w}"] = r
        if args.part in ("all", "memory"):
            report["memory"] = {"workers": args.rss_workers}
            for label, rows in (("rows_small", args.rows_small), ("rows_large", args.rows_large)):
                same = report.get("screen", {}).get(f"workers_{args.rss_workers}")
                if same is None or rows != args.n:
                    big = tmp / f"{label}.smi"
                    write_smi(big, smiles, rows)
                    same = run_child("screen", big, tmp / f"{label}.csv", args.rss_workers, args.chunk_size)
                    big.unlink()
                    (tmp / f"{label}.csv").unlink()
                keys = ("rows", "seconds", "peak_rss_main_mb", "peak_rss_worker_mb")
                report["memory"][label] = {k: same[k] for k in keys}
            s, l = report["memory"]["rows_small"], report["memory"]["rows_large"]
            report["memory"]["rss_ratio_large_vs_small"] = round(l["peak_rss_main_mb"] / s["peak_rss_main_mb"], 3)
            if s["peak_rss_worker_mb"]:  # 0 when no worker process ran (1 worker scores in the main process)
                report["memory"]["worker_rss_ratio_large_vs_small"] = round(
                    l["peak_rss_worker_mb"] / s["peak_rss_worker_mb"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
