"""The measurements: clocks, meters (GPU, CPU energy), FLOPs and the scores of predictions."""
