"""The documentation site: it builds in MkDocs' strict mode (a broken link or API reference fails), its generated
pages hold what they are generated from, and its pages' code blocks run as written (docs/plugins.md's are run by
tests/test_docs.py). A block that cannot run here says why in a `<!-- not run: REASON -->` line above it."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vaezoo.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>.*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
#: pages whose blocks tests/test_docs.py runs (the plugin guide builds and installs a package from its page)
RUN_ELSEWHERE = {"plugins.md"}


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).as_posix() not in RUN_ELSEWHERE)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, body, reason it is not run or None) of each fenced block of `page`."""
    return [(m["lang"], m["body"], m["reason"]) for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def runnable(page: Path) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body, reason in blocks(page) if lang in ("python", "bash") and reason is None]


def test_the_site_builds_strictly_with_its_generated_pages(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for name in build_parser()._subparsers._group_actions[0].choices:  # every command, from the parser itself
        assert f"vaezoo {name}" in cli, name
    assert "--nll-samples NLL_SAMPLES" in cli and "hf://ORG/NAME[@REVISION]" in cli
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for documented in ("create_model", "load_model", "reparameterize", "hf://ORG/NAME[@REVISION]",
                       "Generate n inputs by decoding draws of the prior"):  # docstrings, rendered
        assert documented in api, documented
    results = sorted(p.stem for p in (ROOT / "benchmarks" / "results").glob("*.md"))
    index = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    for stem in results:
        assert (site / "benchmarks" / stem / "index.html").is_file() and f'href="{stem}/"' in index, stem
    assert (site / "benchmarks" / "vae-conv-vs-vae-gan-conv.png").is_file()
    tour = (site / "tour" / "index.html").read_text(encoding="utf-8")
    for picture in ("tour-posterior.png", "tour-prior.png", "tour-interpolation.png", "tour-arithmetic.png"):
        assert picture in tour and (site / "images" / picture).is_file(), picture


def test_every_block_that_is_not_run_says_why_and_the_tutorial_pages_run():
    for page in pages():
        for lang, _, reason in blocks(page):
            assert reason is None or len(reason.split()) >= 3, (page, reason)
    for name in ("quickstart.md", "tour.md"):
        assert len(runnable(DOCS / name)) >= 2, name


@pytest.mark.parametrize("page", [p for p in pages() if runnable(p)], ids=lambda p: p.relative_to(DOCS).as_posix())
def test_a_pages_code_blocks_run_as_written(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # one folder per page: its blocks run in order, as a reader would
    namespace: dict = {}
    for lang, body in runnable(page):
        if lang == "python":
            exec(compile(body, str(page), "exec"), namespace)
            continue
        for line in body.splitlines():
            argv = shlex.split(line, comments=True)
            if not argv:
                continue
            assert argv[0] == "vaezoo", f"{page.name}: only vaezoo commands run here; mark the block `not run`: {line}"
            code = main(argv[1:])
            assert code == 0, (line, capsys.readouterr().err)
