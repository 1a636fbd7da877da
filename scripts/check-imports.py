#!/usr/bin/env python3
"""Fails when two modules of the exporter import each other (directly or around a circle).

Every `crate::a::b` / `super::x` path in src/ (outside test modules) is an edge from the file's
module to the longest module path it names. Two levels are checked:
- top-level modules (config, poller, parse, model, metrics, events, http, ...): no circle;
- sibling modules inside one top-level module (events::detector, events::store, ...): no circle.
A child using its parent's items (a collector using `super::Collector`) is not a circle: the parent
only declares the child with `mod`, which is not an import; a parent that also uses the child's items
is allowed for the same reason, so parent/child edges are left out of the sibling check.
Usage: scripts/check-imports.py [src dir]   (exit 1 and the circles printed when there are any)
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { ... }` blocks (brace-matched) and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, n), SRC)
                mod = module_of(rel)
                # The crate root only declares modules; test-only files are not layering.
                if not mod or mod[-1] == "tests":
                    continue
                files[mod] = strip_tests(open(os.path.join(root, n), encoding="utf-8").read())
    modules = set(files)
    edges = set()
    for mod, text in files.items():
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
            base = () if m.group(1) == "crate" else mod[:-1]
            path = base + tuple(m.group(2).strip(":").split("::"))
            target = max((path[:k] for k in range(1, len(path) + 1) if path[:k] in modules),
                         key=len, default=None)
            if target and target != mod and not (target[:len(mod)] == mod or mod[:len(target)] == target):
                edges.add((mod, target))
    problems = []
    top = {(a[0], b[0]) for a, b in edges if a[0] != b[0]}
    problems += cycles(top, "top-level")
    for t in {m[0] for m in modules}:
        inner = {(a[:2], b[:2]) for a, b in edges
                 if len(a) >= 2 and len(b) >= 2 and a[0] == b[0] == t and a[:2] != b[:2]}
        problems += cycles(inner, f"inside {t}")
    for p in problems:
        print(p)
    print(f"check-imports: {len(modules)} modules, {len(edges)} edges, {len(problems)} circle(s)")
    return 1 if problems else 0


def cycles(edges, where):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found, seen = [], set()

    def walk(node, stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                circle = stack[stack.index(nxt):] + [nxt]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    found.append(f"circle ({where}): " + " -> ".join("::".join(c) if isinstance(c, tuple) else c for c in circle))
            elif len(stack) < 12:
                walk(nxt, stack + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


if __name__ == "__main__":
    sys.exit(main())
