"""Scale-out measurements on this machine; prints JSON.

    python bench/scale_bench.py [--part all|screen|ddp|generate] [--screen-n 100000] [--workers 2]
                                [--ddp-steps 24] [--ddp-batch 64] [--gen-n 100000,1000000]
                                [--gen-decoder stub|model]

- `screen`: `moldesign screen` on the same .smi file (MOSES test SMILES, cycled to --screen-n, 1 row
  in 100 replaced by a bad one) with `--engine local --workers W` and `--engine dask --workers W`
  (a LocalCluster of W processes): wall-clock throughput of the whole command (imports and cluster
  start included) and the run's own rows/s, peak RSS of the process tree (sum over the CLI process
  and its workers, sampled every 0.2 s) and of its largest process; and whether the two CSV
  outputs are byte-identical.
- `ddp`: `moldesign train` on the same molecules, same global batch and steps: 1 process with 1
  and with 2 torch threads, and `torchrun --nproc_per_node 2` (gloo, 1 thread each), the latter
  stopped half-way (train.stop_after_steps) and resumed with --resume, as a user would.
  Throughput = molecules_seen / wall_seconds from the checkpoint's train_info (validation excluded).
- `generate`: peak RSS of `moldesign generate --raw -n N -o out.parquet` for each N, streamed
  (this code) and, for comparison, held in memory (`Designer.generate(raw=True)` + one write, the
  pre-streaming path). `--gen-decoder model` decodes with the shipped model (about 75 mol/s on
  this shared 2-core machine: 10^6 would take hours); `stub` (default) replaces the decoder by one
  returning MOSES-length strings with an unclosed branch (all invalid, RDKit still parses every
  one), which takes the model out of the loop and measures what grows with N: the stream, its
  part files, the merge and the writer.
Data: $MOLDESIGN_DATA/test.parquet (MOSES test) when present, else data/moses_sample.csv.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def source_smiles() -> tuple[list[str], str]:
    import pandas as pd

    moses = Path(os.environ.get("MOLDESIGN_DATA", REPO / "data" / "moses")) / "test.parquet"
    if moses.exists():
        return pd.read_parquet(moses, columns=["smiles"])["smiles"].tolist(), str(moses)
    return pd.read_csv(REPO / "data" / "moses_sample.csv")["smiles"].tolist(), "data/moses_sample.csv"


def measure(cmd: list[str], env: dict | None = None, timeout: float = 1800) -> dict:
    """Run cmd; wall time, exit code, stdout/stderr tails, and peak RSS of its process tree."""
    import psutil

    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})})
    peak = {"tree": 0, "largest": 0}
    done = threading.Event()

    def sample():
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root] + root.children(recursive=True)
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                peak["tree"] = max(peak["tree"], sum(rss))
                peak["largest"] = max(peak["largest"], max(rss, default=0))
            except psutil.Error:
                pass
            done.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate(timeout=timeout)
    done.set()
    th.join()
    return {"rc": proc.returncode, "wall_s": round(time.time() - t0, 2), "stdout": out, "stderr": err,
            "peak_rss_tree_mb": round(peak["tree"] / 2**20, 1), "peak_rss_largest_mb": round(peak["largest"] / 2**20, 1)}


def bench_screen(n: int, workers: int, tmp: Path) -> dict:
    smiles, source = source_smiles()
    bad = ["C1CC", "", "c1cccc1", "not_a_smiles", "CC(C)(C)(C)(C)C"]
    path = tmp / "screen.smi"
    with open(path, "w") as f:
        for i, s in enumerate(itertools.islice(itertools.cycle(smiles), n)):
            f.write((bad[(i // 100) % len(bad)] if i % 100 == 57 else s) + "\n")
    res = {"n": n, "workers": workers, "source": source, "bad_rows": n // 100}
    for engine in ("local", "dask"):
        out = tmp / f"screen_{engine}.csv"
        m = measure([PY, "cli.py", "screen", str(path), "-o", str(out), "--workers", str(workers),
                     "--engine", engine])
        own = re.search(r"written in ([\d.]+) s", m["stderr"])
        res[engine] = {"rc": m["rc"], "wall_s": m["wall_s"], "rows_per_s_wall": round(n / m["wall_s"], 1),
                       "run_s": float(own.group(1)) if own else None,
                       "rows_per_s_run": round(n / float(own.group(1)), 1) if own else None,
                       "peak_rss_tree_mb": m["peak_rss_tree_mb"], "peak_rss_largest_mb": m["peak_rss_largest_mb"]}
        if m["rc"]:
            res[engine]["stderr"] = m["stderr"][-2000:]
    a, b = tmp / "screen_local.csv", tmp / "screen_dask.csv"
    res["outputs_identical"] = a.exists() and b.exists() and a.read_bytes() == b.read_bytes()
    if res["local"]["rows_per_s_wall"]:
        res["dask_over_local_wall"] = round(res["dask"]["rows_per_s_wall"] / res["local"]["rows_per_s_wall"], 3)
    if res["local"]["rows_per_s_run"] and res["dask"]["rows_per_s_run"]:
        res["dask_over_local_run"] = round(res["dask"]["rows_per_s_run"] / res["local"]["rows_per_s_run"], 3)
    return res


def bench_ddp(steps: int, batch: int, tmp: Path) -> dict:
    import pandas as pd

    smiles, source = source_smiles()
    n_mols = steps * batch + 50  # enough for `steps` distinct batches in one epoch (+ validation)
    data = tmp / "train.csv"
    pd.DataFrame({"smiles": smiles[:n_mols]}).to_csv(data, index=False)
    epochs = steps / ((n_mols - 50) / batch)

    def toml(threads: int, stop: int = 0) -> Path:
        p = tmp / f"cfg_{threads}_{stop}.toml"
        p.write_text(f"[train]\nepochs = {epochs}\nbatch_size = {batch}\nnum_threads = {threads}\n"
                     f"val_size = 50\nval_every_minutes = 600.0\ncheckpoint_every_minutes = 600.0\n"
                     f"stop_after_steps = {stop}\ndevice = \"cpu\"\n")
        return p

    def info(pt: Path) -> dict:
        import torch

        ti = torch.load(pt, weights_only=True)["train_info"]
        return {"steps": ti["steps"], "molecules_seen": ti["molecules_seen"], "wall_seconds": ti["wall_seconds"],
                "mol_per_s": round(ti["molecules_seen"] / ti["wall_seconds"], 1), "world_size": ti.get("world_size", 1)}

    res = {"steps": steps, "global_batch": batch, "molecules": n_mols, "source": source, "model": "default ModelConfig"}
    for threads in (1, 2):
        out = tmp / f"single_{threads}.pt"
        m = measure([PY, "cli.py", "train", "--config", str(toml(threads)), "--data", str(data), "-o", str(out), "-q"])
        res[f"1proc_{threads}thread"] = {"rc": m["rc"], "command_wall_s": m["wall_s"], **(info(out) if not m["rc"] else
                                                                                          {"stderr": m["stderr"][-2000:]})}
    out = tmp / "ddp" / "m.pt"
    torchrun = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "moldesign.cli",
                "train", "--data", str(data), "-o", str(out), "-q"]
    first = measure(torchrun + ["--config", str(toml(1, steps // 2))])
    part = info(out) if not first["rc"] else {"stderr": first["stderr"][-2000:]}
    second = measure(torchrun + ["--config", str(toml(1)), "--resume", str(out)])
    final = info(out) if not second["rc"] else {"stderr": second["stderr"][-2000:]}
    res["torchrun_2proc_1thread"] = {"rc": [first["rc"], second["rc"]],
                                     "command_wall_s": [first["wall_s"], second["wall_s"]],
                                     "stopped_at_step": part.get("steps"), "resumed_to_step": final.get("steps"), **final}
    base = res["1proc_1thread"].get("mol_per_s")
    if base and final.get("mol_per_s"):
        res["ddp2_over_1proc_1thread"] = round(final["mol_per_s"] / base, 3)
    if res["1proc_2thread"].get("mol_per_s") and final.get("mol_per_s"):
        res["ddp2_over_1proc_2thread"] = round(final["mol_per_s"] / res["1proc_2thread"]["mol_per_s"], 3)
    return res


def _gen_child(n: int, out: str, mode: str, decoder: str) -> None:
    """In a fresh process: generate --raw (streamed, or in memory as before streaming)."""
    import torch

    torch.set_num_threads(1)
    from moldesign import api
    from moldesign.data import CSV_FLOAT_FORMAT
    from moldesign.data import write_atomic_table

    if decoder == "stub":
        smiles, _ = source_smiles()
        cycle = itertools.cycle([s + "(" for s in smiles])  # unclosed branch: invalid, parsed to the end

        def stub_decode(bundle, z, cond, temperature=0.0, **kw):
            return [next(cycle) for _ in range(len(z))]

        from moldesign.design import generate, raw

        raw.decode = generate.decode = stub_decode  # where generate --raw looks the decoder up
    d = api.load(REPO / "models" / "moldesign-moses.pt", "cpu")
    if mode == "stream":
        d.generate_raw_to(out, n=n, seed=0, float_format=CSV_FLOAT_FORMAT)
    else:
        write_atomic_table(d.generate(n=n, seed=0, raw=True), out)


def bench_generate(ns: list[int], decoder: str, tmp: Path) -> dict:
    res = {"decoder": decoder}
    for mode in ("stream", "in_memory"):
        for n in ns:
            out = tmp / f"gen_{mode}_{n}.parquet"
            m = measure([PY, __file__, "_gen", str(n), str(out), mode, decoder])
            res[f"{mode}_{n}"] = {"rc": m["rc"], "wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_largest_mb"]}
            if m["rc"]:
                res[f"{mode}_{n}"]["stderr"] = m["stderr"][-2000:]
            elif mode == "stream":
                import pyarrow.parquet as pq

                res[f"{mode}_{n}"]["rows_written"] = pq.ParquetFile(out).metadata.num_rows
            out.unlink(missing_ok=True)
    lo, hi = min(ns), max(ns)
    for mode in ("stream", "in_memory"):
        a, b = res[f"{mode}_{lo}"]["peak_rss_mb"], res[f"{mode}_{hi}"]["peak_rss_mb"]
        res[f"{mode}_peak_ratio_{hi}_over_{lo}"] = round(b / a, 3) if a else None
    return res


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_gen":
        _gen_child(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["all", "screen", "ddp", "generate"])
    ap.add_argument("--screen-n", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ddp-steps", type=int, default=24)
    ap.add_argument("--ddp-batch", type=int, default=64)
    ap.add_argument("--gen-n", default="100000,1000000")
    ap.add_argument("--gen-decoder", default="stub", choices=["stub", "model"])
    args = ap.parse_args()
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_avg_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="scale_bench.") as d:
        tmp = Path(d)
        if args.part in ("all", "screen"):
            result["screen"] = bench_screen(args.screen_n, args.workers, tmp)
        if args.part in ("all", "ddp"):
            result["ddp"] = bench_ddp(args.ddp_steps, args.ddp_batch, tmp)
        if args.part in ("all", "generate"):
            result["generate"] = bench_generate([int(x) for x in args.gen_n.split(",")], args.gen_decoder, tmp)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
