"""The README and the pages under docs/ stay true to the tree: the layout page names every module,
every relative link leads to a file (and heading) that exists, and the README fits a screen or so.

Fast: reads files and `git ls-files`, starts nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, List, Set, Tuple
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LAYOUT = DOCS / "layout.md"
README_MAX_LINES = 220

# The folders whose every module the layout page must name, and what counts as a module in them.
MODULE_DIRS = ("bot", "actions", "nlu", "bench", "loadtest", "scripts")
PACKAGE_FILES = ("__init__.py", "__main__.py")

FENCE = re.compile(r"^ {0,3}(```|~~~)")
# An inline code span: a run of backticks, then anything but a blank line, then the same run.
CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
BACKTICKED = re.compile(r"`([^`]+)`")


def markdown_pages() -> List[Path]:
    """README.md and every Markdown page under docs/ (docs/reports/ too)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def without_code(text: str) -> str:
    """`text` with fenced code blocks and inline code spans blanked out: links in code are examples."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return CODE_SPAN.sub("", "\n".join(lines))


def links(text: str) -> List[str]:
    """The targets of the inline and reference-style links and images of a Markdown text."""
    prose = without_code(text)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> Set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered as GitHub does) and <a name>s."""
    seen: Dict[str, int] = {}
    found: Set[str] = set()
    text = page.read_text(encoding="utf-8")
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return found | set(HTML_ANCHOR.findall(text))


def broken_links(page: Path) -> List[str]:
    """What is wrong with each relative link of `page`: a missing file or a missing heading."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):  # http(s), mailto and other absolute URLs
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        where = f"{page.relative_to(ROOT)}: ({target})"
        if not resolved.exists():
            problems.append(f"{where} points at {path_part}, which does not exist")
        elif anchor and resolved.is_file() and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            problems.append(f"{where}: {resolved.relative_to(ROOT)} has no heading #{anchor}")
    return problems


def modules() -> List[str]:
    """The modules the layout page must name: every .py file under MODULE_DIRS and the scripts of scripts/.

    From `git ls-files` (tracked, and new files git does not ignore), so caches and build output never
    count; files deleted from the working tree but still in the index are left out."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *MODULE_DIRS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(
        {
            path
            for path in listed
            if (ROOT / path).is_file()
            and (path.endswith(".py") or (path.startswith("scripts/") and path.endswith(".sh")))
        }
    )


def layout_rows() -> Iterator[Tuple[List[str], List[str]]]:
    """For each row of the layout page's tables: the backticked names of its first cell, and of the row."""
    for line in LAYOUT.read_text(encoding="utf-8").split("\n"):
        cells = line.strip().strip("|").split("|")
        if not line.lstrip().startswith("|") or all(set(cell.strip()) <= set("-: ") for cell in cells):
            continue
        yield BACKTICKED.findall(cells[0]), BACKTICKED.findall(line)


def in_layout(module: str, rows: List[Tuple[List[str], List[str]]]) -> bool:
    """Whether a row of the layout page names `module` (the rule is test_every_module_appears_in_the_layout_page's)."""
    path = PurePosixPath(module)
    for entries, names in rows:
        if module in entries:
            return True
        for entry in entries:
            if not entry.endswith("/") or not module.startswith(entry):
                continue
            if module[len(entry) :] in names:
                return True
        if path.name in PACKAGE_FILES and any(entry.startswith(f"{path.parent}/") for entry in entries):
            return True
    return False


def test_every_module_appears_in_the_layout_page():
    """docs/layout.md names every module of bot/, actions/, nlu/, bench/, loadtest/ (each .py file)
    and every script of scripts/ (.py and .sh), as `git ls-files` lists them.

    A module counts as named when a row of a table in docs/layout.md either
    - lists its path in backticks in the row's first cell (`bot/shell.py`), or
    - lists, in its first cell, a folder above it (`bot/channels/`), and names the module's path below
      that folder in backticks anywhere in the row (`rest.py`; `backend/model.py` under `nlu/triton/`).
    A package's `__init__.py` and `__main__.py` count as named when a row's first cell lists the package's
    folder or anything inside it (`bot/__main__.py` names the package `bot`).
    """
    rows = list(layout_rows())
    missing = [module for module in modules() if not in_layout(module, rows)]
    assert not missing, f"add a row (or the file name to its folder's row) in docs/layout.md for: {missing}"


def test_every_path_the_layout_page_names_exists():
    """A row's first-cell paths exist, and so do the .py and .sh files a folder's row names below it."""
    rows = list(layout_rows())
    stale = [entry for entries, _ in rows for entry in entries if not (ROOT / entry).exists()]
    for entries, names in rows:
        for folder in (entry for entry in entries if entry.endswith("/")):
            stale += [
                folder + name
                for name in names
                if re.fullmatch(r"[\w/]+\.(py|sh)", name)
                and not name.startswith(tuple(MODULE_DIRS))
                and not (ROOT / folder / name).exists()
            ]
    assert not stale, f"docs/layout.md names what is not in the tree: {stale}"


def test_relative_links_resolve():
    """Every relative link and image in README.md and docs/**/*.md points at a file or folder that exists,
    and an anchor into a Markdown page at one of its headings (GitHub's slugs). Links inside code are
    examples and do not count; http(s), mailto and other absolute URLs are not followed."""
    problems = [problem for page in markdown_pages() for problem in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_readme_fits_a_screen():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into a page of docs/ and link it"


def test_the_link_checker_sees_links_and_headings_as_github_does():
    """The checks above rest on these: links in code are not links, slugs drop punctuation but - and _."""
    text = '[a](x.md) `[b](y.md)` ``[c](`z`)``\n```\n[d](w.md)\n```\n![e](img.png "title")\n[f]: ref.md\n'
    assert links(text) == ["x.md", "img.png", "ref.md"]
    assert github_slug("Why did it understand that?") == "why-did-it-understand-that"
    assert github_slug("In a terminal: `make shell`") == "in-a-terminal-make-shell"
    assert github_slug("What `rasa train` writes") == "what-rasa-train-writes"
    assert github_slug("Tests: [the suite](tests.md) and __init__") == "tests-the-suite-and-__init__"
