"""vaezoo-flows: a normalizing-flow prior for vaezoo, contributed through the `vaezoo` entry point."""
from vaezoo_flows.realnvp import AffineCoupling, RealNVPPrior

__version__ = "0.1.0"
__all__ = ["AffineCoupling", "RealNVPPrior", "__version__"]
