"""Every relative link of README.md and docs/*.md leads somewhere: to a file or directory of the
repository and, with a #fragment, to a heading of that page (anchors as GitHub makes them)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.harness import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines, fence = [], None
    for line in text.splitlines():
        marker = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if marker and (fence is None or marker[1].startswith(fence)):
            fence = None if fence else marker[1]
            continue
        if fence is None:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match[2])
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def links(page: Path) -> list[str]:
    prose = re.sub(r"`[^`]*`", "", "\n".join(prose_lines(page.read_text(encoding="utf-8"))))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def relative_links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in links(page) if not HAS_SCHEME.match(target)]


def test_the_pages_are_found_and_link_to_each_other():
    assert len(PAGES) > 5
    assert len(relative_links()) > 50


@pytest.mark.parametrize(
    "page, target", relative_links(), ids=lambda value: value.name if isinstance(value, Path) else value
)
def test_relative_link_resolves(page, target):
    path, _, fragment = target.partition("#")
    destination = (page.parent / unquote(path)).resolve() if path else page
    where = f"{page.relative_to(ROOT)} → {target}"
    assert destination.exists(), f"{where}: {path} does not exist"
    assert destination == ROOT or ROOT in destination.parents, f"{where}: leaves the repository"
    if fragment:
        assert destination.suffix == ".md", f"{where}: a #fragment only points into a Markdown page"
        assert unquote(fragment) in anchors(destination), (
            f"{where}: no heading with that anchor in {destination.relative_to(ROOT)}; "
            f"it has {sorted(anchors(destination))}"
        )


def test_readme_leads_to_every_page_of_docs():
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in links(ROOT / "README.md")
        if not HAS_SCHEME.match(target) and target.partition("#")[0]
    }
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link to {page.relative_to(ROOT)}"


@pytest.mark.parametrize(
    "heading, anchor",
    [
        ("Garantias: nenhum chamado perdido, nenhum duplicado", "garantias-nenhum-chamado-perdido-nenhum-duplicado"),
        ("Chave do formulário (pública)", "chave-do-formulário-pública"),
        ("`GET /chamados/<protocolo>`", "get-chamadosprotocolo"),
        (
            "`POST /criar-chamado` com anexos (`multipart/form-data`)",
            "post-criar-chamado-com-anexos-multipartform-data",
        ),
        ("Quem pode ler `/metrics`", "quem-pode-ler-metrics"),
        ("Prontidão (`GET /health`)", "prontidão-get-health"),
        ("[Garantias](docs/garantias.md)", "garantias"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert slug(heading) == anchor


def test_a_heading_inside_a_code_block_is_no_anchor_and_repeated_headings_are_numbered(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Título\n\n```sh\n# comentário\n```\n\n## Exemplo\n\n## Exemplo\n", encoding="utf-8")
    assert anchors(page) == {"título", "exemplo", "exemplo-1"}
