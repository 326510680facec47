"""The `vaezoo` command line: parse, call the library, print."""
