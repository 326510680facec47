"""Run directories: their files, lock, checkpoints, and loading a trained model back."""
