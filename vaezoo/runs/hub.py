"""Runs on the Hugging Face Hub: `hf://ORG/NAME[@REVISION]` resolved to a run directory in the local Hub cache.

The repository is a run directory as `vaezoo push` publishes it. Only its safe files are downloaded
(config.json, the safetensors, metrics and evaluation records): never a pickle, whatever the repository holds.
A cached run loads without the network, and with HF_HUB_OFFLINE=1 the cache alone is used.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from vaezoo.errors import RunDirError
from vaezoo.runs.directory import ARCHITECTURE, ARCHITECTURE_RECORD, CONFIG, METRICS, WEIGHTS

PREFIX = "hf://"
#: what is downloaded of a run's repository: all that loading, evaluating and drawing it read (evaluation.json:
#: the scores `vaezoo eval --disentanglement/--sample-quality` recorded)
RUN_FILES = [CONFIG, WEIGHTS, ARCHITECTURE_RECORD, METRICS, "evaluation.json"]
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def is_hub_reference(ref: str | os.PathLike[str]) -> bool:
    """Whether `ref` names a run on the Hub (hf://...) rather than a local directory."""
    return isinstance(ref, str) and ref.startswith(PREFIX)


def split_reference(ref: str) -> tuple[str, str | None]:
    """(ORG/NAME, REVISION or None) of `hf://ORG/NAME[@REVISION]`; RunDirError for anything else."""
    repo, _, revision = ref[len(PREFIX):].partition("@")
    if not _REPO.fullmatch(repo) or "--" in repo or ".." in repo or (revision == "" and "@" in ref):
        raise RunDirError(f"{ref} does not name a Hub repository: write hf://ORG/NAME or hf://ORG/NAME@REVISION")
    return repo, revision or None


def hub_run(ref: str) -> Path:
    """The local directory of the Hub run `ref`: its snapshot in the Hugging Face cache, downloaded (its safe
    files only) unless already there or HF_HUB_OFFLINE is set."""
    repo, revision = split_reference(ref)
    try:
        import huggingface_hub
        from huggingface_hub import constants, errors
    except ImportError:
        raise RunDirError(f"{ref} is a run on the Hugging Face Hub, which needs huggingface_hub: "
                          "pip install 'vaezoo[hub]'") from None
    try:
        folder = Path(huggingface_hub.snapshot_download(repo, revision=revision, allow_patterns=RUN_FILES,
                                                        library_name="vaezoo"))
    except errors.LocalEntryNotFoundError:
        raise RunDirError(f"{ref} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
                          "and cannot be downloaded now (HF_HUB_OFFLINE is set, or the Hub is unreachable); "
                          "download it once while online") from None
    except errors.RevisionNotFoundError:
        raise RunDirError(f"{ref}: the repository {repo} has no revision {revision!r}") from None
    except errors.RepositoryNotFoundError:
        raise RunDirError(f"{ref}: there is no model repository {repo} on the Hub (or it is private or gated: "
                          "log in with `hf auth login`)") from None
    except (errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise RunDirError(f"cannot download {ref}: {exc}") from None
    _refuse_pickled(ref, folder)
    return folder


def _refuse_pickled(ref: str, folder: Path) -> None:
    """A repository whose model is a hand-built pickle (model.pt) is refused: the Hub is read as safetensors only."""
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a missing or broken config.json is named by read_config, as for a run directory
    if isinstance(config, dict) and config.get("architecture") == ARCHITECTURE:
        raise RunDirError(f"{ref} holds a hand-built model saved as a pickle ({ARCHITECTURE}); vaezoo reads runs from the "
                          "Hub as safetensors only, and never unpickles what it downloads")


def in_hub_cache(path: str | os.PathLike[str]) -> bool:
    """Whether `path` lies in the Hugging Face cache (a downloaded run, which vaezoo never writes into)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return Path(path).resolve().is_relative_to(Path(constants.HF_HUB_CACHE).resolve())
