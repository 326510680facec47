"""`vaezoo push`: publish a run directory on the Hugging Face Hub as `hf://ORG/NAME` loads it back.

What is sent is the run's safe files only (config.json, the safetensors, the metrics and evaluation records,
report.html and the pictures) with a generated model card, README.md; never a pickle, a checkpoint, a logger's
folder or the lock. The files are checked and copied first (under the run's lock, so that a training run cannot
change them half-way), and the copy is what is uploaded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import nullcontext
from pathlib import Path

from vaezoo.analysis.model_card import model_card
from vaezoo.analysis.report import EVALUATION, PICTURES, REPORT
from vaezoo.errors import RunDirError, VaezooError
from vaezoo.runs import hub
from vaezoo.runs.directory import (
    ARCHITECTURE,
    ARCHITECTURE_RECORD,
    CONFIG,
    METRICS,
    WEIGHTS,
    claim_run_dir,
    read_config,
    read_weights,
)

CARD = "README.md"
#: the files of a run that are published (those present), then the card
PUBLISHED = (CONFIG, WEIGHTS, ARCHITECTURE_RECORD, METRICS, EVALUATION, REPORT, *(name for name, _ in PICTURES))


def published_files(run: Path) -> list[str]:
    """The names of PUBLISHED that `run` holds as regular files (a link is followed only into the Hub cache, where
    a downloaded run's files are links to its blobs; anything else could send a file from outside the run)."""
    found = []
    for name in PUBLISHED:
        path = run / name
        if not path.exists():
            continue
        if path.is_symlink() and not hub.in_hub_cache(path.resolve()) or not path.resolve().is_file():
            raise RunDirError(f"{path} is not a regular file of the run (a link or a folder); vaezoo publishes only "
                              "the run's own files: replace it with the file, or remove it")
        found.append(name)
    return found


def check_repo_id(repo_id: str) -> str:
    """ORG/NAME of a repository to push to (hf:// in front is allowed); RunDirError for anything else."""
    ref = repo_id if hub.is_hub_reference(repo_id) else hub.PREFIX + repo_id
    repo, revision = hub.split_reference(ref)
    if revision is not None:
        raise RunDirError(f"push {repo_id}: name the repository as ORG/NAME, without @REVISION (a push makes a commit "
                          "on its main branch)")
    return repo


def stage(run: Path, repo_id: str, command: str | None, folder: Path) -> list[str]:
    """Check the run and copy what is published of it, with its card, into `folder`; the names copied."""
    config = read_config(run)
    if config.get("architecture") == ARCHITECTURE:
        raise RunDirError(f"{run} holds a hand-built model saved as a pickle ({ARCHITECTURE}); the Hub is read as "
                          "safetensors only, so it cannot be published: make its parts module-level classes of plain "
                          "data and fit it again, so that it is recorded without pickle")
    read_weights(run, config)  # its checksum and finiteness: a damaged run is not published
    names = published_files(run)
    for name in names:
        shutil.copyfile(run / name, folder / name)
    (folder / CARD).write_text(model_card(folder, repo_id, command), encoding="utf-8")
    return [*names, CARD]


def push_run(run: str | os.PathLike[str], repo_id: str, *, command: str | None, private: bool = False,
             message: str | None = None) -> str:
    """Publish the run `run` (a directory, or a run downloaded from the Hub) as the model repository `repo_id`
    (created when it does not exist); the repository's address. `command` is the line that made the run, for
    the card. Run files a previous push left that this run lacks are removed from the repository; other files
    stay."""
    repo = check_repo_id(repo_id)
    run = Path(run)
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise VaezooError("vaezoo push needs huggingface_hub: pip install 'vaezoo[hub]'") from None
    read_config(run)  # a path that is no run is named as such before anything is locked
    in_cache = hub.in_hub_cache(run)
    lock = nullcontext() if in_cache else claim_run_dir(run, busy="wait for it to finish, then push it")
    with lock, tempfile.TemporaryDirectory(prefix="vaezoo-push-") as folder:
        stage(run, repo, command, Path(folder))
        api = HfApi(library_name="vaezoo")
        try:
            url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=repo, folder_path=folder, repo_type="model", delete_patterns=list(PUBLISHED),
                              commit_message=message or f"vaezoo push of {run.name}")
        except Exception as exc:  # noqa: BLE001 - the network boundary: HTTP, connection and token errors alike
            raise VaezooError(f"cannot push {run} to the Hub as {repo}: {type(exc).__name__}: {exc} (log in with "
                              "`hf auth login` or set HF_TOKEN, and check the repository name)") from None
    return str(url)
