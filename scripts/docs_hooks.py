"""MkDocs hooks (mkdocs.yml `hooks:`): the pages of the site that are generated at build time from their source,
so that they cannot drift from it: the command-line reference from vaezoo's argparse parser, and the benchmark
pages from benchmarks/results/*.md (with the pictures they show)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:  # the vaezoo of this checkout, also when it is not installed
    sys.path.insert(0, str(ROOT))


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each `vaezoo` command, in the order `vaezoo --help` lists them."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, helps.get(name) or "", sub) for name, sub in action.choices.items()]


def cli_reference() -> str:
    """Markdown of every `vaezoo` command: its purpose and its `--help`, as the parser prints them."""
    from vaezoo.cli.main import build_parser

    parser = build_parser()
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=110)
    lines = ["# Command-line reference", "",
             "Generated from vaezoo's argument parser when the site is built: each command's `--help`.", "",
             "```text", parser.format_help().rstrip(), "```", ""]
    for name, summary, sub in _subcommands(parser):
        sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=110)
        lines += [f"## vaezoo {name}", "", summary[:1].upper() + summary[1:] + ".", "",
                  "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _title(path: Path) -> str:
    first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
    return first.lstrip("# ").strip() if first.startswith("#") else path.stem


def benchmark_index(pages: list[Path]) -> str:
    lines = ["# Benchmarks", "",
             "The measured results under `benchmarks/results/`, each with the command that made it; generated from "
             "those files when the site is built.", ""]
    lines += [f"- [{_title(page)}]({page.name})" for page in pages]
    return "\n".join(lines) + "\n"


def on_files(files: Files, config) -> Files:
    """Add the generated pages: reference/cli.md, and benchmarks/ (an index, each results page, its pictures)."""
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    pages = sorted(RESULTS.glob("*.md"))
    files.append(File.generated(config, "benchmarks/index.md", content=benchmark_index(pages)))
    for path in [*pages, *sorted(RESULTS.glob("*.png"))]:
        files.append(File.generated(config, f"benchmarks/{path.name}", abs_src_path=str(path)))
    return files
