#!/usr/bin/env python3
"""Checks the links of the project's Markdown files, so the docs cannot point
at a file or a section that is not there.

Every Markdown file git knows of (tracked, or new and not ignored; nothing
under target/) is read, and each link in it is checked: inline links and
images, `[text](target)`, reference definitions, `[ref]: target`, and HTML
`href`/`src` attributes. Links inside fenced code blocks and code spans are
text, not links; http(s), mailto and other URLs with a scheme are skipped.

- A relative path must exist, relative to the linking file (a leading `/`:
  relative to the repository root).
- An `#anchor`, alone (this file) or after a `.md` path, must match a heading
  of the target file by GitHub's rules: the heading's text, lowercased, with
  every character that is not a letter, a digit, a space, a hyphen or an
  underscore dropped (backticks and punctuation with it) and each space made
  a hyphen; a repeated heading gets -1, -2 ... An HTML `id`/`name` counts too.

Prints each broken link as `file:line: link: why` and exits 1, or prints
"N links checked in M files" and exits 0. Run it from anywhere in the
repository, with no arguments:

    scripts/check-doc-links.py

or with Markdown files to check only those (their links may point anywhere).
Standard library only.
"""

import difflib
import os
import re
import subprocess
import sys
import unicodedata
from urllib.parse import unquote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = ("target/", "node_modules/")

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# [text](target "title"): the text may hold one level of brackets.
INLINE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ATTR = re.compile(r"<(?:a|img)\s[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.I)
HTML_ID = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def markdown_files():
    """The repository's Markdown files: tracked, or untracked and not ignored."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        paths = [p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = []
        for d, dirs, files in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in (".git", "target", "node_modules")]
            paths += [os.path.relpath(os.path.join(d, f), ROOT) for f in files if f.endswith(".md")]
    paths = [p.replace(os.sep, "/") for p in paths]
    return sorted(
        p for p in set(paths)
        if not p.startswith(SKIP_DIRS) and "/node_modules/" not in p
        and os.path.isfile(os.path.join(ROOT, p))
    )


def blank_code_spans(line):
    """The text with each code span replaced by spaces (line breaks kept)."""
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), line)


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield n, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip()[len(m.group(1)):].strip():
            fence = None


def heading_text(raw):
    """A heading's text as GitHub renders it: no code ticks, links, tags or emphasis marks."""
    t = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", raw)  # links: their text
    t = re.sub(r"<[^>]+>", "", t)                                          # HTML tags
    t = re.sub(r"(`+)(.+?)\1", r"\2", t)                                   # code spans: their text
    t = re.sub(r"(?<![\w])_+|_+(?![\w])", "", t)                           # _emphasis_, not snake_case
    return t.strip()


def slug(text):
    """GitHub's anchor for a heading's text (github-slugger)."""
    keep = []
    for ch in text.lower():
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LNM":
            keep.append(ch)
    return "".join(keep).replace(" ", "-")


def anchors_of(text):
    """Every anchor a Markdown file defines: its headings' slugs and HTML ids."""
    found, seen = set(), {}
    previous = None
    for _, line in prose_lines(text):
        title = None
        m = ATX.match(line)
        if m:
            title = m.group(2) or ""
        elif previous and SETEXT.match(line) and not previous.lstrip().startswith(("|", ">", "-", "*", "#")):
            title = previous.strip()
        if title is not None:
            base = slug(heading_text(title))
            s = base
            if s in seen:
                n = seen[base]
                while True:
                    n += 1
                    s = f"{base}-{n}"
                    if s not in seen:
                        break
                seen[base] = n
            seen[s] = 0
            found.add(s)
        found.update(HTML_ID.findall(line))
        previous = line if line.strip() and title is None else None
    return found


def paragraphs(text):
    """(first line number, lines) of each run of non-blank lines outside fenced code."""
    block, start, last = [], 0, None
    for n, line in prose_lines(text):
        if not line.strip() or (last is not None and n != last + 1):
            if block:
                yield start, block
            block = []
        if line.strip():
            if not block:
                start = n
            block.append(line)
        last = n
    if block:
        yield start, block


def links_in(text):
    """(line number, target) of every link outside code; a link's text may span lines."""
    for start, lines in paragraphs(text):
        found = []
        for i, line in enumerate(lines):
            m = REFDEF.match(blank_code_spans(line))
            if m:
                found.append((start + i, m.group(1)))
        prose = blank_code_spans("\n".join(lines))
        for pattern in (INLINE, HTML_ATTR):
            for m in pattern.finditer(prose):
                found.append((start + prose.count("\n", 0, m.start()), m.group(1)))
        yield from sorted(found, key=lambda f: f[0])


def main(argv):
    files = [os.path.relpath(os.path.abspath(a), ROOT).replace(os.sep, "/") for a in argv] or markdown_files()
    texts, anchor_cache = {}, {}

    def read(rel):
        if rel not in texts:
            with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
                texts[rel] = f.read()
        return texts[rel]

    def anchors(rel):
        if rel not in anchor_cache:
            anchor_cache[rel] = anchors_of(read(rel))
        return anchor_cache[rel]

    broken, checked = [], 0
    for rel in files:
        for line, target in links_in(read(rel)):
            target = target.strip("<>")
            if not target or SCHEME.match(target):
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            path = unquote(path)
            if path.startswith("/"):
                dest = os.path.normpath(path.lstrip("/"))
            elif path:
                dest = os.path.normpath(os.path.join(os.path.dirname(rel), path))
            else:
                dest = rel
            dest = dest.replace(os.sep, "/")
            full = os.path.join(ROOT, dest)
            why = None
            if dest.startswith("../") or dest == "..":
                why = f"{dest} is outside the repository"
            elif not os.path.exists(full):
                why = f"no such file: {dest}"
            elif anchor and dest.endswith(".md") and os.path.isfile(full):
                names = anchors(dest)
                if unquote(anchor) not in names:
                    close = difflib.get_close_matches(unquote(anchor).lower(), sorted(names), n=1)
                    hint = f" (did you mean #{close[0]}?)" if close else ""
                    why = f"no heading #{anchor} in {dest}{hint}"
            if why:
                broken.append(f"{rel}:{line}: {target}: {why}")

    for b in broken:
        print(b)
    sys.stdout.flush()
    if broken:
        print(f"{len(broken)} broken of {checked} links checked in {len(files)} files", file=sys.stderr)
        return 1
    print(f"{checked} links checked in {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
