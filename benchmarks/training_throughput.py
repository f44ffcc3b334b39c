"""Training throughput on UCI Adult (48,842 rows, 14 features) and on a 1M-row version of it, on the
CPU and, where torch sees one, on a CUDA GPU.

Trains the same seeded configuration on each device and prints training rows/s (training rows ×
epochs run / seconds, after one untimed warm-up run so torch's start-up is not counted; with
--repeat, of the fastest run and of the median), the CPU seconds the process used, and how closely
the devices' eval scores agree; the load average comes with them, as the machine may be shared. The
1M-row case draws Adult's rows with replacement (seeded) and trains 2 epochs with the fairness
penalty on sex and race, as a retraining job would.

    python benchmarks/training_throughput.py [--epochs 10] [--rows 1000000] [--skip-large] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from governance.demo import load_adult
from governance.service.training import split_rows
from training.trainer import TrainConfig, train


def _case(frame, config: TrainConfig, devices: list[str], repeat: int, report) -> dict:
    features = [c for c in frame.columns if c != "income"]
    train_rows, eval_rows = split_rows(len(frame), 0.25, 0)
    results = {}
    for device in devices:
        runs = []  # (wall seconds, CPU seconds of this process), the model of the last run
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            model = train(frame.iloc[train_rows], label="income", features=features, config=config, device=device)
            runs.append((time.perf_counter() - started, time.process_time() - cpu_started))
        seconds = sorted(wall for wall, _ in runs)
        epochs = max(h.get("epoch", 0) for h in model.history)
        gradient_rows = len(train_rows) * (1 - config.validation_fraction) * epochs
        scores = model.predict(frame.iloc[eval_rows])
        results[device] = {"seconds": round(seconds[0], 2), "epochs": epochs,
                           "rows_per_second": round(gradient_rows / seconds[0]),
                           "median_rows_per_second": round(gradient_rows / statistics.median(seconds)),
                           "cpu_seconds": round(min(cpu for _, cpu in runs), 2),
                           "eval_auc": round(roc_auc_score(frame["income"].iloc[eval_rows], scores), 5),
                           "scores": scores}
        spread = f" (median of {repeat}: {results[device]['median_rows_per_second']:,})" if repeat > 1 else ""
        report(f"  {device:4}  {epochs} epochs in {seconds[0]:.2f} s = {results[device]['rows_per_second']:,} "
               f"training rows/s{spread}; {results[device]['cpu_seconds']:.2f} s of CPU; "
               f"eval ROC AUC {results[device]['eval_auc']}")
    if "cuda" in results:
        results["agreement"] = {
            "max_score_difference": float(np.abs(results["cuda"]["scores"] - results["cpu"]["scores"]).max()),
            "auc_difference": abs(results["cuda"]["eval_auc"] - results["cpu"]["eval_auc"]),
            "speedup": round(results["cpu"]["seconds"] / results["cuda"]["seconds"], 2)}
        report(f"  cuda vs cpu: {results['agreement']['speedup']}x faster; largest score difference "
               f"{results['agreement']['max_score_difference']:.2e}")
    for device in devices:
        results[device].pop("scores")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs for the Adult case (default 10)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large case (default 1M)")
    parser.add_argument("--skip-large", action="store_true", help="only the Adult case")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per case and device: the fastest and the median are reported (default 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    frame = load_adult()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
           + ("" if len(devices) > 1 else "; no CUDA device visible to torch: GPU comparison not run"))
    warm = frame.sample(2_000, random_state=0)
    for device in devices:  # torch's first call per device pays its start-up; not part of the rate
        train(warm, label="income", features=[c for c in frame.columns if c != "income"],
              config=TrainConfig(epochs=1, sensitive=("sex",)), device=device)
    results = {}
    report(f"Adult ({len(frame):,} rows), {args.epochs} epochs, batch 512")
    results["adult"] = _case(frame, TrainConfig(epochs=args.epochs, patience=args.epochs, batch_size=512,
                                                sensitive=("sex",)), devices, args.repeat, report)
    if not args.skip_large:
        large = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
        report(f"Adult drawn to {len(large):,} rows, 2 epochs, batch 1024, fairness penalty on sex and race")
        results["large"] = _case(large, TrainConfig(epochs=2, patience=2, batch_size=1024, sensitive=("sex", "race"),
                                                    strategies=("fairness_penalty",)), devices, args.repeat,
                                 report)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared
    report(f"load average after: {', '.join(map(str, results['load_average']))}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
