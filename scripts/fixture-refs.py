#!/usr/bin/env python3
"""Lists the places in the repository that hard-code a value of a captured fixture that a new
capture no longer contains, so re-capturing fixtures never breaks tests silently.

Usage: scripts/fixture-refs.py OLD_DIR NEW_DIR [REPO_ROOT]
  OLD_DIR   the fixtures as the tests use them now (a copy of tests/fixtures taken before capturing)
  NEW_DIR   the freshly captured fixtures (scripts/capture-fixtures.sh's output folder)
  REPO_ROOT where to look for references (default: this script's repository)

Only files present in both folders are compared (a capture that skipped a file, e.g. IPv6 or
Valkey, leaves that fixture and the tests on it as they were). The values checked are the ones a
re-capture changes and tests are tempted to copy: node ids and run ids (40 hex digits), node
ports (`host:port@cport`, `tcp_port:`, `port=`; both port and bus port) and CLUSTER NODES ping/pong
times (13-digit milliseconds). A value is stale when it is in an old file and in no new file.
Every .rs, .md, .jsonl, .txt, .py and .sh file of the repository (outside target/ and the compared
fixture files themselves) is searched for the stale values; Rust's `1_700_000_000_000` digit
grouping is matched too.

Prints `path:line: value (from fixture, ...)` for each hit and exits 1 when there is any, 0 when
no file refers to a stale value (the new fixtures can replace the old ones as they are).
"""
import os
import re
import sys

ID = re.compile(r"\b[0-9a-f]{40}\b")
ADDR_PORTS = re.compile(r":(\d{4,5})@(\d{4,5})\b")
INFO_PORTS = re.compile(r"(?:tcp_port:|port=|master_port:)(\d{4,5})\b")
MILLIS = re.compile(r"\b1\d{12}\b")
SEARCHED = (".rs", ".md", ".jsonl", ".txt", ".py", ".sh")
SKIPPED_DIRS = {"target", ".git", "corpus", "artifacts"}


def values(text):
    """The re-capture-dependent values of one fixture's text."""
    found = set(ID.findall(text)) | set(MILLIS.findall(text))
    for m in ADDR_PORTS.finditer(text):
        found.update(m.groups())
    found.update(INFO_PORTS.findall(text))
    return found


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def stale_values(old_dir, new_dir):
    """value -> fixture names it came from, for values of old files missing from every new one."""
    common = sorted(set(os.listdir(old_dir)) & set(os.listdir(new_dir)))
    common = [n for n in common if n.endswith(".txt")]
    new_values = set()
    for n in common:
        new_values |= values(read(os.path.join(new_dir, n)))
    stale = {}
    for n in common:
        for v in values(read(os.path.join(old_dir, n))) - new_values:
            stale.setdefault(v, []).append(n)
    return stale, common


def repo_files(root, skip):
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIPPED_DIRS)
        for n in sorted(names):
            p = os.path.join(d, n)
            if n.endswith(SEARCHED) and os.path.realpath(p) not in skip:
                yield p


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    old_dir, new_dir = sys.argv[1], sys.argv[2]
    root = sys.argv[3] if len(sys.argv) == 4 else os.path.join(os.path.dirname(__file__), "..")
    stale, common = stale_values(old_dir, new_dir)
    fixtures = os.path.join(root, "tests", "fixtures")
    skip = {os.path.realpath(os.path.join(fixtures, n)) for n in common}
    skip |= {os.path.realpath(os.path.join(new_dir, n)) for n in common}
    pattern = re.compile(r"\b(" + "|".join(sorted(stale, key=len, reverse=True)) + r")\b") if stale else None
    hits = 0
    for p in repo_files(root, skip) if pattern else ():
        for k, line in enumerate(read(p).splitlines(), 1):
            for m in pattern.finditer(line.replace("_", "")):
                hits += 1
                rel = os.path.relpath(p, root)
                print(f"{rel}:{k}: {m.group(1)} (from {', '.join(stale[m.group(1)][:3])})")
    print(f"fixture-refs: {len(common)} fixtures compared, {len(stale)} values changed, "
          f"{hits} reference(s) to them", file=sys.stderr)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
