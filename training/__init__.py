"""Torch retraining: feedback datasets, curriculum, calibration, worker."""
