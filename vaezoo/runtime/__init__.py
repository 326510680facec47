"""Where computation runs: devices, the world of ranks, and finiteness checks."""
