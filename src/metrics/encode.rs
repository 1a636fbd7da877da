//! The text encoder for families read from the snapshot: one pass writes both the classic
//! Prometheus text format and OpenMetrics, with redis_exporter's exact names (a counter whose
//! name has no `_total`, a summary) that `prometheus-client`'s own encoder cannot express.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Label set of one series (the `cluster` label is added by the encoder).
pub type Labels = Vec<(&'static str, String)>;

/// The type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A monotonic count; its name ends in `_total`.
    Counter,
    /// A monotonic count whose redis_exporter name has no `_total`: a counter in the classic
    /// text format (legal there), `unknown` in OpenMetrics (which would rename a counter's
    /// samples to `<name>_total`), so queries see the same name in both.
    CounterNoTotal,
    /// Quantiles plus `_sum` and `_count` (samples carry their own suffix and `quantile`).
    /// redis_exporter's quantiles are percentiles (`quantile="99.9"`), which OpenMetrics does
    /// not allow in a summary: there the three parts are written as `unknown` families of the
    /// same sample names, so queries see the same series in both formats.
    Summary,
}

/// One family's samples: `(name suffix, labels, value)`; the suffix is empty except for a
/// summary's `_sum` and `_count`.
#[derive(Debug)]
struct Family {
    name: Cow<'static, str>,
    help: &'static str,
    kind: Kind,
    samples: Vec<(&'static str, Labels, f64)>,
}

/// Families collected from one snapshot, encoded once at the end.
#[derive(Debug, Default)]
pub struct Families {
    families: Vec<Family>,
}

impl Families {
    /// Adds a family; an empty one is left out (a field no node reports is absent, not 0).
    pub fn add(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: &'static str,
        kind: Kind,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let samples: Vec<_> = samples.into_iter().map(|(l, v)| ("", l, v)).collect();
        self.add_raw(name, help, kind, samples);
    }

    /// A gauge family.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        self.add(name, help, Kind::Gauge, samples);
    }

    /// A counter family (`name` ends in `_total`).
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        self.add(name, help, Kind::Counter, samples);
    }

    /// A family whose samples carry name suffixes (summaries).
    pub fn add_raw(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: &'static str,
        kind: Kind,
        samples: Vec<(&'static str, Labels, f64)>,
    ) {
        if samples.is_empty() {
            return;
        }
        let name = name.into();
        debug_assert!(
            self.families.iter().all(|f| f.name != name),
            "family {name} added twice"
        );
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        self.families.push(Family {
            name,
            help,
            kind,
            samples,
        });
    }

    /// Names of the families collected so far.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.families.iter().map(|f| f.name.as_ref())
    }

    /// Writes every family in both formats: `(classic text, OpenMetrics without # EOF)`.
    pub fn encode(&self, cluster: &str) -> (String, String) {
        let size: usize = self
            .families
            .iter()
            .map(|f| 64 + f.samples.len() * 80)
            .sum();
        let (mut text, mut om) = (String::with_capacity(size), String::with_capacity(size));
        let cluster = escape_label(cluster);
        for f in &self.families {
            let (classic_type, om_type) = match f.kind {
                Kind::Gauge => ("gauge", "gauge"),
                Kind::Counter => ("counter", "counter"),
                Kind::CounterNoTotal => ("counter", "unknown"),
                Kind::Summary => ("summary", "unknown"),
            };
            let name = f.name.as_ref();
            let om_name = match f.kind {
                Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            let help = escape_help(f.help);
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} {classic_type}");
            for (suffix, labels, value) in &f.samples {
                push_sample(&mut text, name, suffix, labels, *value, &cluster);
            }
            let parts: &[&str] = if f.kind == Kind::Summary {
                &["", "_sum", "_count"]
            } else {
                &[""]
            };
            for part in parts {
                let samples = f
                    .samples
                    .iter()
                    .filter(|s| parts.len() == 1 || s.0 == *part);
                let mut samples = samples.peekable();
                if samples.peek().is_none() {
                    continue;
                }
                let _ = writeln!(om, "# HELP {om_name}{part} {help}");
                let _ = writeln!(om, "# TYPE {om_name}{part} {om_type}");
                for (suffix, labels, value) in samples {
                    push_sample(&mut om, name, suffix, labels, *value, &cluster);
                }
            }
        }
        (text, om)
    }
}

fn push_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &Labels,
    value: f64,
    cluster: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    for (k, v) in labels {
        let _ = write!(out, "{k}=\"{}\",", escape_label(v));
    }
    let _ = write!(out, "cluster=\"{cluster}\"}} ");
    push_value(out, value);
    out.push('\n');
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label(v: &str) -> String {
    if !v.contains(['\\', '"', '\n']) {
        return v.to_string();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let mut f = Families::default();
        f.counter(
            "redis_x_total",
            "X",
            [(vec![("addr", "a\"b".to_string())], 3.0)],
        );
        f.add("redis_y", "Y", Kind::CounterNoTotal, [(Labels::new(), 0.5)]);
        f.gauge("redis_empty", "never shown", []);
        let (text, om) = f.encode("c");
        assert_eq!(
            text,
            "# HELP redis_x_total X\n# TYPE redis_x_total counter\nredis_x_total{addr=\"a\\\"b\",cluster=\"c\"} 3\n# HELP redis_y Y\n# TYPE redis_y counter\nredis_y{cluster=\"c\"} 0.5\n"
        );
        assert!(om.starts_with("# HELP redis_x X\n# TYPE redis_x counter\nredis_x_total{"));
        assert!(om.contains("# TYPE redis_y unknown\n"));
        assert!(!om.contains("redis_empty"));
    }
}
