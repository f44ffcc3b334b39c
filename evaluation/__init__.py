"""The metric engine: performance, calibration, fairness and drift per model version."""
