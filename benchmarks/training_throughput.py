"""Training throughput on UCI Adult (48,842 rows, 14 features) on the CPU, and CUDA vs CPU.

Trains the same configuration (seeded) on each available device and prints rows/s (training rows ×
epochs run / seconds) and how closely the two models' eval metrics agree. A GPU is used when torch
sees one; otherwise only the CPU line is printed.

    python benchmarks/training_throughput.py [--epochs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.adult import load_adult  # noqa: E402
from governance.service.training import split_rows  # noqa: E402
from training.trainer import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    frame = load_adult()
    features = [c for c in frame.columns if c != "income"]
    train_rows, eval_rows = split_rows(len(frame), 0.25, 0)
    config = TrainConfig(epochs=args.epochs, patience=args.epochs, batch_size=512, sensitive=("sex",))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {}
    for device in devices:
        started = time.perf_counter()
        model = train(frame.iloc[train_rows], label="income", features=features, config=config, device=device)
        seconds = time.perf_counter() - started
        epochs = max(h.get("epoch", 0) for h in model.history)
        scores = model.predict(frame.iloc[eval_rows])
        results[device] = {"seconds": round(seconds, 2), "epochs": epochs,
                           "rows_per_second": round(len(train_rows) * 0.8 * epochs / seconds),
                           "eval_auc": round(roc_auc_score(frame["income"].iloc[eval_rows], scores), 5),
                           "scores": scores}
    if "cuda" in results:
        difference = float(np.abs(results["cuda"]["scores"] - results["cpu"]["scores"]).max())
        results["agreement"] = {"max_score_difference": difference,
                                "auc_difference": abs(results["cuda"]["eval_auc"] - results["cpu"]["eval_auc"])}
    for r in results.values():
        r.pop("scores", None)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for device in devices:
        r = results[device]
        print(f"{device:4}  {r['epochs']} epochs in {r['seconds']} s = {r['rows_per_second']:,} training rows/s; "
              f"eval ROC AUC {r['eval_auc']}")
    if "agreement" in results:
        print(f"cuda vs cpu: largest score difference {results['agreement']['max_score_difference']:.2e}, "
              f"AUC difference {results['agreement']['auc_difference']:.2e}")
    else:
        print("no CUDA device visible to torch: GPU comparison not run")


if __name__ == "__main__":
    main()
