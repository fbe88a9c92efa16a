#!/usr/bin/env python3
"""Checks the links of the built book and of the top-level Markdown files.

`mdbook build` (0.5.4, the version .ci/run pins) does not fail on a broken
internal link, so this does, after it:

* every relative link and image in the built HTML (docs/book) points at a
  file of the book, and every `#anchor` at an id on that page;
* every relative link in README.md, ARCHITECTURE.md and CHANGELOG.md points
  at a file of the source tree; a link into docs/src/*.md is checked, with
  its anchor, against the page the book built from it;
* no page names an issue tracker readers cannot see ("issue 14").

Standard library only. Exits 1 and lists every problem found.

    mdbook build docs && scripts/check-book.py
"""

import html.parser
import os
import re
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOK = os.path.join(ROOT, "docs", "book")
SOURCE = os.path.join(ROOT, "docs", "src")
TOP_LEVEL = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md"]
# Pages mdBook makes for itself: the 404 page resolves links from the site's
# root, and the table of contents repeats SUMMARY.md's links.
SKIPPED_PAGES = {"404.html", "toc.html"}
# "issue 14", "issue #14", "the v2 issue": a tracker readers cannot see.
TRACKER = re.compile(r"\bissues? #?\d+\b|\bthe \w+ issue\b", re.IGNORECASE)


class Page(html.parser.HTMLParser):
    """The ids a page defines and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        target = attrs.get("href") if tag in ("a", "link") else None
        if tag in ("img", "script") and attrs.get("src"):
            target = attrs["src"]
        if target is not None:
            self.links.append(target)


def is_external(target):
    parsed = urllib.parse.urlsplit(target)
    return bool(parsed.scheme) or target.startswith("//")


def parse(path, cache):
    if path not in cache:
        page = Page()
        with open(path, encoding="utf-8") as f:
            page.feed(f.read())
        cache[path] = page
    return cache[path]


def check_target(path, fragment, cache, where, problems):
    """Whether `path` exists and, for a page, defines `fragment`."""
    if os.path.isdir(path):
        path = os.path.join(path, "index.html")
    if not os.path.isfile(path):
        problems.append(f"{where}: no such file {os.path.relpath(path, ROOT)}")
        return
    if fragment and path.endswith(".html"):
        if urllib.parse.unquote(fragment) not in parse(path, cache).ids:
            problems.append(
                f"{where}: no #{fragment} in {os.path.relpath(path, ROOT)}"
            )


def check_book(cache, problems):
    pages = 0
    links = 0
    for directory, _, files in os.walk(BOOK):
        for name in files:
            if not name.endswith(".html") or name in SKIPPED_PAGES:
                continue
            page_path = os.path.join(directory, name)
            pages += 1
            for target in parse(page_path, cache).links:
                if is_external(target) or target.startswith("javascript:"):
                    continue
                links += 1
                path, _, fragment = target.partition("#")
                resolved = (
                    os.path.normpath(os.path.join(directory, urllib.parse.unquote(path)))
                    if path
                    else page_path
                )
                where = os.path.relpath(page_path, ROOT) + f" -> {target}"
                if not resolved.startswith(BOOK + os.sep):
                    problems.append(f"{where}: points outside the book")
                    continue
                check_target(resolved, fragment, cache, where, problems)
    return pages, links


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def github_slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(path):
    with open(path, encoding="utf-8") as f:
        text = CODE.sub("", f.read())
    return {github_slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE)}


def check_top_level(cache, problems):
    links = 0
    for name in TOP_LEVEL:
        path = os.path.join(ROOT, name)
        with open(path, encoding="utf-8") as f:
            text = CODE.sub("", f.read())
        for target in MARKDOWN_LINK.findall(text):
            if is_external(target):
                continue
            links += 1
            where = f"{name} -> {target}"
            file_part, _, fragment = target.partition("#")
            resolved = (
                os.path.normpath(os.path.join(ROOT, urllib.parse.unquote(file_part)))
                if file_part
                else path
            )
            if resolved.startswith(SOURCE + os.sep) and resolved.endswith(".md"):
                if not os.path.isfile(resolved):
                    problems.append(f"{where}: no such page")
                    continue
                page = os.path.join(BOOK, os.path.relpath(resolved, SOURCE))[:-3] + ".html"
                check_target(page, fragment, cache, where, problems)
            elif not os.path.exists(resolved):
                problems.append(f"{where}: no such file")
            elif fragment and resolved.endswith(".md"):
                if fragment not in markdown_anchors(resolved):
                    problems.append(f"{where}: no heading for #{fragment}")
    return links


def check_tracker(problems):
    sources = [os.path.join(ROOT, n) for n in TOP_LEVEL]
    for directory, _, files in os.walk(SOURCE):
        sources += [os.path.join(directory, n) for n in files if n.endswith(".md")]
    for path in sources:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                match = TRACKER.search(line)
                if match:
                    problems.append(
                        f"{os.path.relpath(path, ROOT)}:{number}: names an issue tracker "
                        f"readers cannot see: {match.group(0)!r}"
                    )


def main():
    if not os.path.isdir(BOOK):
        sys.exit(f"check-book: {os.path.relpath(BOOK, ROOT)} is missing: run `mdbook build docs` first")
    cache = {}
    problems = []
    pages, book_links = check_book(cache, problems)
    top_links = check_top_level(cache, problems)
    check_tracker(problems)
    for problem in problems:
        print(f"check-book: {problem}", file=sys.stderr)
    if problems:
        sys.exit(f"check-book: {len(problems)} problems")
    print(
        f"check-book: {pages} pages, {book_links} links in the book and "
        f"{top_links} in {', '.join(TOP_LEVEL)}: every one resolves"
    )


if __name__ == "__main__":
    main()
