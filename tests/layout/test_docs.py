"""The README stays a short guide, and the docs' links lead somewhere.

Guides say how things work and carry no commit hashes (they go stale with every commit); measured figures
live in docs/results.md and docs/performance.md, each with the commit and date it was taken at."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RECORDS = {"results.md", "performance.md"}  # the only docs that cite commits

# 7 to 40 hex digits with at least one letter and one digit: a git hash, not a number or a word.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def guides() -> list[Path]:
    return [README, ROOT / "ARCHITECTURE.md", *(p for p in sorted(DOCS.glob("*.md")) if p.name not in RECORDS)]


def test_readme_is_a_short_guide_that_opens_with_the_two_commands_and_links_the_map_early():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    opening = "\n".join(lines[:8])
    assert "make demo" in opening and "make test" in opening
    assert any("(ARCHITECTURE.md)" in line for line in lines[:60])


def test_guides_cite_no_commits():
    for path in guides():
        found = COMMIT.findall(path.read_text())
        assert not found, f"{path.relative_to(ROOT)} cites commits {found}"


def test_every_relative_link_in_the_docs_exists():
    for path in [README, ROOT / "ARCHITECTURE.md", *sorted(DOCS.glob("*.md"))]:
        for target in LINK.findall(path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to missing {target}"
