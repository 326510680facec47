"""Registers every run listed in weights.json (its files under runs/) through vaezoo_register_weights."""
from __future__ import annotations

import json
from pathlib import Path

from vaezoo import hookimpl

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "weights.json"


@hookimpl
def vaezoo_register_weights(register):
    for name, record in json.loads(MANIFEST.read_text(encoding="utf-8")).items():
        fields = {k: v for k, v in record.items() if k not in ("directory", "description")}
        register(name, {**fields, "files": HERE / "runs" / record["directory"]}, description=record.get("description"))
