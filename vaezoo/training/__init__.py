"""Training: the trainer, its configuration, and `fit`."""
