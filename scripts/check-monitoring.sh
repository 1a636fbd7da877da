#!/usr/bin/env bash
# Static checks of the monitoring assets: alert rules (+ their unit tests), Prometheus and Alertmanager
# configs, Grafana dashboards, docker-compose.monitoring.yml. Needs promtool and amtool (Debian packages
# prometheus and prometheus-alertmanager) and python3 with PyYAML; missing ones are installed with apt-get.
# Usage: scripts/check-monitoring.sh        (from anywhere; exits non-zero on the first failing check)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing $* and cannot apt-get install it" >&2
        exit 1
    fi
    echo "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    }
}

command -v promtool >/dev/null || apt_install prometheus
command -v amtool >/dev/null || apt_install prometheus-alertmanager

# A python3 with PyYAML: the one on PATH, else Debian's (python3-yaml installs there).
PY=python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    PY=/usr/bin/python3
    "$PY" -c 'import yaml' 2>/dev/null || apt_install python3-yaml
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step "promtool check rules alerts/*.yml"
promtool check rules alerts/*.yml

step "promtool test rules alerts/tests/*.yml"
promtool test rules alerts/tests/*.yml

step "promtool check config monitoring/prometheus/prometheus.yml"
promtool check config monitoring/prometheus/prometheus.yml

step "amtool check-config monitoring/alertmanager/alertmanager.yml"
amtool check-config monitoring/alertmanager/alertmanager.yml

step "every alert has severity, summary, description, runbook and a test"
"$PY" - <<'EOF'
import glob, sys, yaml
errors = []
alerts = {}
for f in sorted(glob.glob("alerts/*.yml")):
    for g in yaml.safe_load(open(f))["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            name = r["alert"]
            alerts[name] = r
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                errors.append(f"{name}: labels.severity must be critical|warning|info")
            ann = r.get("annotations", {})
            for k in ("summary", "description", "runbook"):
                if not ann.get(k):
                    errors.append(f"{name}: annotations.{k} missing")
            if "$labels.cluster" not in ann.get("summary", "") + ann.get("description", ""):
                errors.append(f"{name}: summary/description must name the cluster")
            if "instance" in r["expr"].replace("(cluster, instance)", "") or " by (" not in r["expr"]:
                errors.append(f"{name}: expression must aggregate `by (cluster, ...)` (drop instance/job)")
firing, quiet = set(), set()
for f in sorted(glob.glob("alerts/tests/*.yml")):
    for t in yaml.safe_load(open(f))["tests"]:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
for name in alerts:
    if name not in firing:
        errors.append(f"{name}: no firing test case")
    if name not in quiet:
        errors.append(f"{name}: no non-firing test case (exp_alerts: [])")
if list(alerts)[:1] != ["RedisClusterStateFail"]:
    errors.append("the first alert must be RedisClusterStateFail")
for e in errors:
    print("ERROR:", e)
if errors:
    sys.exit(1)
print(f"{len(alerts)} alerts, each with a firing and a non-firing test")
EOF

step "Grafana dashboards (dashboards/*.json)"
"$PY" - <<'EOF'
import glob, json, re, sys
errors = []
def err(f, msg):
    errors.append(f"{f}: {msg}")
DS = "${datasource}"
def ds_ok(d):
    if isinstance(d, str):
        return d == DS
    return isinstance(d, dict) and d.get("uid") == DS
def panels(items):
    for p in items or []:
        yield p
        yield from panels(p.get("panels"))
# a metric selector is any redis_* name left after removing label lists (by/on/without/group_*) and strings
LABEL_LISTS = re.compile(r'\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)')
def check_expr(f, title, e):
    others = set(re.findall(r'\$\{?(\w+)', e)) - {"cluster"}
    if others:
        err(f, f"panel {title!r}: variables other than $cluster in {e!r}: {sorted(others)}")
    # walk the selectors, with label lists blanked out (they hold label names such as redis_version)
    stripped = LABEL_LISTS.sub(lambda m: " " * len(m.group(0)), e)
    for m in re.finditer(r'\b(redis_\w+)\b', stripped):
        if re.match(r'\s*=', stripped[m.end():]) or stripped[m.start() - 1:m.start()] in ('"',):
            continue  # a label name in a matcher
        rest = stripped[m.end():]
        sel = re.match(r'\s*\{([^}]*)\}', rest)
        if not sel or 'cluster="$cluster"' not in sel.group(1):
            err(f, f"panel {title!r}: selector {m.group(1)} lacks cluster=\"$cluster\" in {e!r}")
uids, all_exprs = {}, []
files = sorted(glob.glob("dashboards/*.json"))
if len(files) < 2:
    errors.append("expected dashboards/redis-cluster-overview.json and dashboards/redis-cluster-failover.json")
for f in files:
    try:
        d = json.load(open(f))
    except Exception as e:  # noqa: BLE001
        err(f, f"invalid JSON: {e}")
        continue
    uid = d.get("uid")
    if not uid:
        err(f, "dashboard uid not set")
    elif uid in uids:
        err(f, f"uid {uid} also used by {uids[uid]}")
    uids[uid] = f
    if not d.get("title"):
        err(f, "title not set")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        err(f, "schemaVersion missing or older than 36")
    tv = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    dv = tv.get("datasource")
    if not dv or dv.get("type") != "datasource" or dv.get("query") != "prometheus":
        err(f, "needs a `datasource` variable of type datasource, query prometheus")
    cv = tv.get("cluster")
    cq = cv and (cv.get("query") if isinstance(cv.get("query"), str) else (cv.get("query") or {}).get("query"))
    if not cv or cv.get("type") != "query" or "label_values(redis_up, cluster)" not in (cq or "") \
            or not ds_ok(cv.get("datasource")):
        err(f, "needs a `cluster` query variable label_values(redis_up, cluster) on ${datasource}")
    ids = set()
    for p in panels(d.get("panels")):
        title = p.get("title", "?")
        pid = p.get("id")
        if not isinstance(pid, int):
            err(f, f"panel {title!r}: id missing")
        elif pid in ids:
            err(f, f"panel {title!r}: duplicate id {pid}")
        ids.add(pid)
        if not ds_ok(p.get("datasource")):
            err(f, f"panel {title!r}: datasource must reference {DS}")
        if "gridPos" not in p:
            err(f, f"panel {title!r}: gridPos missing")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            err(f, f"panel {title!r}: no targets")
        refs = set()
        for t in targets:
            if not (t.get("expr") or "").strip():
                err(f, f"panel {title!r}: target {t.get('refId')} has no expr")
                continue
            if not ds_ok(t.get("datasource")):
                err(f, f"panel {title!r}: target {t.get('refId')} datasource must reference {DS}")
            if not t.get("refId") or t["refId"] in refs:
                err(f, f"panel {title!r}: missing or duplicate refId")
            refs.add(t.get("refId"))
            check_expr(f, title, t["expr"])
            all_exprs.append(t["expr"])
    for a in d.get("annotations", {}).get("list", []):
        if a.get("builtIn"):
            continue
        if not ds_ok(a.get("datasource")):
            err(f, f"annotation {a.get('name')!r}: datasource must reference {DS}")
        for e in {a.get("expr"), (a.get("target") or {}).get("expr")} - {None, ""}:
            check_expr(f, "annotation " + a.get("name", ""), e)
# the seed guide's queries must each be on a panel
joined = "\n".join(all_exprs)
seeds = {
    "rate(redis_commands_processed_total[5m]) with the cluster filter":
        'rate(redis_commands_processed_total{cluster="$cluster"}[5m])' in joined,
    "memory used / max": any("redis_memory_used_bytes" in e and "redis_memory_max_bytes" in e and "/" in e
                             for e in all_exprs),
    "redis_db_keys": "redis_db_keys{" in joined,
    "redis_connected_clients": "redis_connected_clients{" in joined,
    "replication offset": "redis_master_repl_offset{" in joined or "redis_replication_offset{" in joined,
}
for name, ok in seeds.items():
    if not ok:
        errors.append(f"no panel has the seed query: {name}")
for e in errors:
    print("ERROR:", e)
if errors:
    sys.exit(1)
print(f"{len(files)} dashboards, {len(all_exprs)} panel queries: OK")
EOF

step "dashboard queries parse as PromQL (scripts/dashboard-exprs.py | promtool check rules)"
"$PY" scripts/dashboard-exprs.py >"$TMP/exprs.tsv"
"$PY" - "$TMP/exprs.tsv" "$TMP/dashboard-exprs.rules.yml" <<'EOF'
import sys, yaml
rules = []
for i, line in enumerate(open(sys.argv[1])):
    f, title, expr = line.rstrip("\n").split("\t")
    rules.append({"record": f"dashboard_expr_{i}", "expr": expr.replace("$cluster", "check")})
yaml.safe_dump({"groups": [{"name": "dashboard-exprs", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(rules)} expressions")
EOF
promtool check rules "$TMP/dashboard-exprs.rules.yml" | sed 's|'"$TMP"'/||'

step "docker-compose.monitoring.yml"
"$PY" - <<'EOF'
import os, re, sys, yaml
f = "docker-compose.monitoring.yml"
errors = []
d = yaml.safe_load(open(f))
services = d.get("services") or {}
networks = set((d.get("networks") or {}).keys())
volumes = set((d.get("volumes") or {}).keys())
base = os.path.dirname(os.path.abspath(f))
for name, s in services.items():
    deps = s.get("depends_on") or []
    for dep in (deps.keys() if isinstance(deps, dict) else deps):
        if dep not in services:
            errors.append(f"{name}: depends_on unknown service {dep}")
    nets = s.get("networks") or []
    for n in (nets.keys() if isinstance(nets, dict) else nets):
        if n not in networks:
            errors.append(f"{name}: unknown network {n}")
    for v in s.get("volumes") or []:
        if isinstance(v, dict):
            src, typ = v.get("source"), v.get("type", "volume")
        else:
            src = v.split(":")[0]
            typ = "bind" if src.startswith((".", "/", "~")) else "volume"
        if typ == "bind":
            if not os.path.exists(os.path.join(base, src)):
                errors.append(f"{name}: mounted path {src} does not exist in the repo")
        elif src not in volumes:
            errors.append(f"{name}: named volume {src} not declared under volumes:")
    b = s.get("build")
    if b is not None:
        ctx = b if isinstance(b, str) else b.get("context", ".")
        df = "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile")
        if not os.path.isfile(os.path.join(base, ctx, df)):
            errors.append(f"{name}: build {ctx}/{df} does not exist")
    if s.get("image") is None and b is None:
        errors.append(f"{name}: neither image nor build")
need = [f"redis-node-{i}" for i in range(1, 7)] + ["redis-cluster-init", "redis-exporter", "prometheus",
                                                  "alertmanager", "grafana"]
for n in need:
    if n not in services:
        errors.append(f"missing service {n}")
for i in range(1, 7):
    s = services.get(f"redis-node-{i}", {})
    cmd = " ".join(s.get("command") or []) if isinstance(s.get("command"), list) else str(s.get("command"))
    if s.get("image") != "redis:7.0" or "--cluster-enabled yes" not in cmd:
        errors.append(f"redis-node-{i}: must run redis:7.0 with --cluster-enabled yes")
init = " ".join(map(str, services.get("redis-cluster-init", {}).get("command") or []))
if "--cluster create" not in init or "--cluster-replicas 1" not in init or "--cluster-yes" not in init:
    errors.append("redis-cluster-init must run redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes")
# the docker-specific target addresses of the Prometheus config must be compose services
prom = open("monitoring/prometheus/prometheus.yml").read()
for host in re.findall(r"targets:\s*\[\s*'([\w.-]+):\d+'", prom):
    if host not in services:
        errors.append(f"prometheus.yml target host {host} is not a compose service")
for e in errors:
    print("ERROR:", e)
if errors:
    sys.exit(1)
print(f"{len(services)} services: depends_on, networks, volumes and mounted paths OK")
EOF
if docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.monitoring.yml config --quiet
    echo "docker compose config: OK"
fi

printf '\ncheck-monitoring: all checks passed\n'
