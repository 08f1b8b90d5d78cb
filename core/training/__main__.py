"""Command line: fine-tune on a FiftyOne dataset, also under ``accelerate launch`` (multi-GPU / multi-node).

Example::

    accelerate launch --num_processes 4 -m person_finder.core.training \\
        --dataset market1501 --output-dir runs/people --epochs 10 --mode lora
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from .. import contract, defaults
from .train import TrainConfig


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m person_finder.core.training", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--train-tag", default="train")
    parser.add_argument("--val-fraction", type=float, default=defaults.TRAIN_VAL_FRACTION)
    parser.add_argument("--run-key", default=None, help=f"default: {contract.TRAIN_RUN_KEY} (or the next free _N)")
    for field in dataclasses.fields(TrainConfig):
        kind = {"int": int, "float": float}.get(str(field.type), str)
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=None)
    args = vars(parser.parse_args(argv))
    config = TrainConfig(**{f.name: args[f.name] for f in dataclasses.fields(TrainConfig) if args[f.name] is not None})

    import fiftyone as fo

    from .finetune import finetune

    result = finetune(fo.load_dataset(args["dataset"]), args["output_dir"], config, train_tag=args["train_tag"],
                      val_fraction=args["val_fraction"], run_key=args["run_key"])
    if result.is_main_process:
        print(json.dumps(dict(model_dir=result.model_dir, best_epoch=result.best_epoch, history=result.history)))


if __name__ == "__main__":
    main()
