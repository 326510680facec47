"""vaezoo-weights: trained vaezoo runs shipped as pretrained weights (pretrained:VARIANT/DATASET)."""
