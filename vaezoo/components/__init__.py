"""The built-in plugins: each module registers its parts through the same hooks a third-party plugin uses."""
