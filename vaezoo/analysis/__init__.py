"""What a trained model learned: evaluation, latent-space exploration, pictures, reports, operator benchmarks."""
