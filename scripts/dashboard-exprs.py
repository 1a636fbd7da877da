#!/usr/bin/env python3
"""Print every PromQL expression of the Grafana dashboards, one per line:

    <dashboard file>\t<panel title>\t<expr>

Panel targets (rows included, nested panels of collapsed rows too) and Prometheus annotation queries
(title "annotation: <name>"); template variable queries (label_values(...)) are not PromQL and are
left out. `$cluster` is left in place for the caller to substitute; the expressions use no other
Grafana variable ($__rate_interval etc.), only fixed range windows. Newlines/tabs inside an
expression are folded into spaces so each line stays one record.

Usage: scripts/dashboard-exprs.py [DASHBOARD.json ...]   (default: dashboards/*.json of the repo)
"""
import glob
import json
import os
import signal
import sys


def one_line(s):
    return " ".join(s.split())


def panels(items):
    for p in items or []:
        yield p
        yield from panels(p.get("panels"))


def exprs(path):
    with open(path) as fh:
        dash = json.load(fh)
    for p in panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if t.get("expr"):
                yield p.get("title", ""), t["expr"]
    for a in (dash.get("annotations") or {}).get("list", []):
        seen = set()
        for e in (a.get("expr"), (a.get("target") or {}).get("expr")):
            if e and e not in seen:
                seen.add(e)
                yield "annotation: " + a.get("name", ""), e


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = argv or sorted(glob.glob(os.path.join(root, "dashboards", "*.json")))
    if not files:
        print("no dashboards found", file=sys.stderr)
        return 1
    for f in files:
        shown = os.path.relpath(f, root) if not argv else f
        for title, e in exprs(f):
            print(f"{shown}\t{one_line(title)}\t{one_line(e)}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # allow `| head`
    sys.exit(main(sys.argv[1:]))
