"""Run under torchrun by test_ddp.py: a DDP run on the tiny model that stops after a few steps,
then resumes to the end, recording on every rank a hash of the parameters and the loss per step.

    torchrun --standalone --nproc_per_node 2 tests/integration/ddp_worker.py DATA.csv OUTDIR
"""
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from moldesign.training.loop import torchrun_env, train
from tests.conftest import TINY_MODEL, TINY_TRAIN


def main(data: str, outdir: str) -> None:
    env = torchrun_env(required=True)
    dist.init_process_group("gloo")  # one group for both calls (train leaves a caller's group open)
    torch.set_num_threads(1)
    out = Path(outdir)
    records = []

    def on_step(step, model, loss):
        h = hashlib.sha256()
        for p in model.parameters():
            h.update(p.detach().cpu().numpy().tobytes())
        records.append({"step": step, "params": h.hexdigest(), "loss": loss})

    cfg = dataclasses.replace(TINY_TRAIN, data=data, epochs=4, batch_size=16, lr=3e-3, word_dropout=0.1,
                              stop_after_steps=5)
    train(TINY_MODEL, cfg, out / "ddp.pt", log=lambda m: None, progress=False, distributed=True, on_step=on_step)
    train(TINY_MODEL, dataclasses.replace(cfg, stop_after_steps=0), out / "ddp.pt", resume=out / "ddp.pt",
          log=lambda m: None, progress=False, distributed=True, on_step=on_step)
    (out / f"rank{env.rank}.json").write_text(json.dumps(records))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
