"""The plugin system: hook specifications, discovery of plugins, the catalog of their parts, and model assembly."""
