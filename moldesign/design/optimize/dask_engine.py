"""`optimize --engine dask`: the starts of a batch spread over a Dask cluster, as `screen --engine
dask` spreads rows. The starts are cut into chunks of at most MAX_ACTIVE (about two per worker, so
a slow chunk does not hold the others up); each chunk is one task that loads the model once per
worker process and runs the local batch on it (leads.optimize_batch: its starts searched
together). A start's rows depend only on the start, the settings and the seed, never on the starts
beside it, so the rows equal `--engine local`'s (all but the timing). Without a scheduler address
a LocalCluster of `workers` single-threaded processes is started; with a multi-node cluster every
worker must be able to read the model file at the same path."""
from __future__ import annotations

import math
from typing import Iterator

import pandas as pd

from .batch import MAX_ACTIVE

_BUNDLES: dict = {}  # in a worker process: (model path, device) → its loaded Bundle


def _chunk_task(model: str, device: str, rows: list[dict], terms: dict, settings: dict, seed: int,
                baseline: bool) -> list[tuple]:
    """On a worker: one chunk of starts as a local batch → [(start_id, rows, summary), ...]."""
    import torch

    from ...decoding.sampling import resolve_device
    from ...model import checkpoint
    from ..leads import optimize_batch

    torch.set_num_threads(1)  # one process per core: the cluster is the parallelism
    key = (model, device)
    if key not in _BUNDLES:
        _BUNDLES[key] = checkpoint.load(model, resolve_device(device))
    return list(optimize_batch(_BUNDLES[key], model, pd.DataFrame(rows), baseline=baseline, ordered=False,
                               seed=seed, **terms, **settings))


def chunks_of(rows: list, workers: int) -> list[list]:
    """About two chunks per worker, at most MAX_ACTIVE starts each, in input order."""
    size = max(1, min(MAX_ACTIVE, math.ceil(len(rows) / max(1, 2 * workers))))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def optimize_batch_dask(model: str, device: str, starts: pd.DataFrame, done: set[str] = frozenset(),
                        terms: dict | None = None, settings: dict | None = None, seed: int = 0,
                        baseline: bool = False, scheduler: str | None = None, workers: int = 2,
                        progress: bool = False) -> Iterator[tuple]:
    """(start_id, rows, summary) per start not in `done`, a chunk's starts together as its task
    ends (not in input order): leads.optimize_batch on the cluster. `terms`: the objective's
    maximize/minimize/targets/objective; `settings`: optimize's."""
    from tqdm import tqdm

    from ...screening.dask_engine import _import_dask, dask_client

    _import_dask()
    rows = starts[~starts["start_id"].astype(str).isin(set(map(str, done)))]
    records = [{"start_id": str(r["start_id"]), "smiles": r["smiles"]} for r in rows.to_dict("records")]
    bar = tqdm(total=len(records), desc="optimize (dask)", unit="start", disable=not progress, mininterval=1.0)
    try:
        with dask_client(scheduler, workers) as client:
            from distributed import as_completed

            n_workers = len(client.scheduler_info().get("workers", {})) or workers
            futures = [client.submit(_chunk_task, model, device, chunk, terms or {}, settings or {}, seed, baseline,
                                     pure=False) for chunk in chunks_of(records, n_workers)]
            for fut in as_completed(futures):
                for item in fut.result():
                    bar.update(1)
                    yield item
    finally:
        bar.close()
