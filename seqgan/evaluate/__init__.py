"""Evaluation: FID, reconstruction metrics, the visualization pipeline."""
