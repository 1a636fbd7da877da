//! The text encoder for families read from the snapshot: each family is written, as it is
//! added, straight into the output of the one format being rendered (classic Prometheus text or
//! OpenMetrics), with redis_exporter's exact names (a counter whose name has no `_total`, a
//! summary) that `prometheus-client`'s own encoder cannot express. No sample outlives its family.

use super::Format;
use flate2::write::GzEncoder;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

/// With a gzip sink, the text buffer is handed to the compressor whenever a sample leaves it at
/// least this long (checked per sample: one family, the latency percentiles, is 20 MB at 1000
/// nodes). A render being gzipped so holds its compressed output and this much text, never the
/// whole plain body (45 MB at 1000 nodes with full telemetry).
const SPILL_AT: usize = 256 * 1024;

/// Label set of one series (the `cluster` label is added by the encoder). Values are borrowed
/// from the snapshot where they can be, so a render allocates one `Vec` per series at most.
pub type Labels<'a> = Vec<(&'static str, Cow<'a, str>)>;

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

/// The output of one render: the families added so far, already encoded in one format.
#[derive(Debug)]
pub struct Families {
    format: Format,
    /// The `cluster` label's value, escaped.
    cluster: String,
    out: String,
    /// Names of the families written, in order (a few hundred, mostly borrowed).
    names: Vec<Cow<'static, str>>,
    /// The compressor `out` is spilled into, when the render is gzipped.
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl Families {
    /// Families in `format` with the `cluster` label on every series, written after what `out`
    /// already holds (its capacity is kept: size it for the whole body).
    pub fn new(format: Format, cluster: &str, out: String) -> Self {
        Families {
            format,
            cluster: escape_label(cluster).into_owned(),
            out,
            names: Vec::new(),
            gzip: None,
        }
    }

    /// Like [`Families::new`], but the output is gzipped as it is written (at
    /// [`super::GZIP_LEVEL`]) into a buffer of `capacity` bytes to start with.
    pub fn gzipped(format: Format, cluster: &str, out: String, capacity: usize) -> Self {
        let gzip = GzEncoder::new(Vec::with_capacity(capacity), super::GZIP_LEVEL);
        Families {
            gzip: Some(gzip),
            ..Families::new(format, cluster, out)
        }
    }

    /// Hands the text written so far to the compressor once it is long enough.
    #[inline]
    fn spill(&mut self, at_least: usize) {
        if let Some(gz) = self.gzip.as_mut()
            && self.out.len() >= at_least
        {
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(self.out.as_bytes());
            self.out.clear();
        }
    }

    /// Adds a family; an empty one is left out (a field no node reports is absent, not 0).
    pub fn add<'a>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: &'static str,
        kind: Kind,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let name = self.note(name.into(), kind);
        self.header(&name, "", help, kind);
        for (labels, value) in samples {
            push_sample(&mut self.out, &name, "", &labels, value, &self.cluster);
            self.spill(SPILL_AT);
        }
        self.names.push(name);
    }

    /// A gauge family.
    pub fn gauge<'a>(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        self.add(name, help, Kind::Gauge, samples);
    }

    /// A counter family (`name` ends in `_total`).
    pub fn counter<'a>(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        self.add(name, help, Kind::Counter, samples);
    }

    /// A family whose samples carry name suffixes (summaries). In OpenMetrics a summary's
    /// quantiles, `_sum` and `_count` are written as three families (see [`Kind::Summary`]), so
    /// `samples` is called once per part, with the suffix of that part (`None`: every sample):
    /// it makes those samples afresh each time, and none is kept once written.
    pub fn add_raw<'a, I>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: &'static str,
        kind: Kind,
        samples: impl Fn(Option<&'static str>) -> I,
    ) where
        I: Iterator<Item = (&'static str, Labels<'a>, f64)>,
    {
        if samples(None).next().is_none() {
            return;
        }
        let name = self.note(name.into(), kind);
        let parts: &[&str] = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Summary) => &["", "_sum", "_count"],
            _ => &[""],
        };
        for part in parts {
            let only = (parts.len() > 1).then_some(*part);
            let mut of_part = samples(only)
                .filter(|s| only.is_none_or(|p| s.0 == p))
                .peekable();
            if of_part.peek().is_none() {
                continue;
            }
            self.header(&name, part, help, kind);
            for (suffix, labels, value) in of_part {
                push_sample(&mut self.out, &name, suffix, &labels, value, &self.cluster);
                self.spill(SPILL_AT);
            }
        }
        self.names.push(name);
    }

    /// Names of the families written so far, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter().map(|n| n.as_ref())
    }

    /// The output: what `out` held, then every family added, then `trailer`; gzipped when made
    /// by [`Families::gzipped`].
    pub fn finish(mut self, trailer: &str) -> bytes::Bytes {
        self.out.push_str(trailer);
        self.spill(0);
        match self.gzip {
            Some(gz) => gz.finish().unwrap_or_default().into(),
            None => self.out.into(),
        }
    }

    /// Checks (in debug builds) a family about to be written.
    fn note(&self, name: Cow<'static, str>, kind: Kind) -> Cow<'static, str> {
        debug_assert!(
            self.names.iter().all(|n| *n != name),
            "family {name} added twice"
        );
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        name
    }

    /// `# HELP` and `# TYPE` of a family (in OpenMetrics: of its part `part`).
    fn header(&mut self, name: &str, part: &str, help: &str, kind: Kind) {
        let (family, kind) = match self.format {
            Format::Text => (name, classic_type(kind)),
            Format::OpenMetrics => (openmetrics_name(name, kind), openmetrics_type(kind)),
        };
        let help = escape_help(help);
        let out = &mut self.out;
        for (line, text) in [("# HELP ", help.as_ref()), ("# TYPE ", kind)] {
            out.push_str(line);
            out.push_str(family);
            out.push_str(part);
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
    }
}

/// The `# TYPE` of a family in the classic text format.
fn classic_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Gauge => "gauge",
        Kind::Counter | Kind::CounterNoTotal => "counter",
        Kind::Summary => "summary",
    }
}

/// The `# TYPE` of a family in OpenMetrics.
fn openmetrics_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
        Kind::CounterNoTotal | Kind::Summary => "unknown",
    }
}

/// The family name in OpenMetrics: a counter's without its samples' `_total`.
fn openmetrics_name(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

fn push_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &Labels<'_>,
    value: f64,
    cluster: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    for (k, v) in labels {
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(&escape_label(v));
        out.push_str("\",");
    }
    out.push_str("cluster=\"");
    out.push_str(cluster);
    out.push_str("\"} ");
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

fn escape_label(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(v);
    }
    Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

fn escape_help(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '\n']) {
        return Cow::Borrowed(v);
    }
    Cow::Owned(v.replace('\\', "\\\\").replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same families in each format.
    fn families(format: Format) -> String {
        let mut f = Families::new(format, "c", String::new());
        f.counter(
            "redis_x_total",
            "X",
            [(vec![("addr", Cow::Borrowed("a\"b"))], 3.0)],
        );
        f.add("redis_y", "Y", Kind::CounterNoTotal, [(Labels::new(), 0.5)]);
        f.gauge("redis_empty", "never shown", []);
        f.add_raw("redis_s", "S", Kind::Summary, |_| {
            [
                ("", vec![("quantile", Cow::Borrowed("99.9"))], 7.0),
                ("_sum", Labels::new(), 9.0),
                ("_count", Labels::new(), 2.0),
            ]
            .into_iter()
        });
        assert_eq!(
            f.names().collect::<Vec<_>>(),
            ["redis_x_total", "redis_y", "redis_s"]
        );
        String::from_utf8(f.finish("").to_vec()).unwrap_or_default()
    }

    #[test]
    fn both_formats() {
        assert_eq!(
            families(Format::Text),
            "# HELP redis_x_total X\n# TYPE redis_x_total counter\nredis_x_total{addr=\"a\\\"b\",cluster=\"c\"} 3\n# HELP redis_y Y\n# TYPE redis_y counter\nredis_y{cluster=\"c\"} 0.5\n# HELP redis_s S\n# TYPE redis_s summary\nredis_s{quantile=\"99.9\",cluster=\"c\"} 7\nredis_s_sum{cluster=\"c\"} 9\nredis_s_count{cluster=\"c\"} 2\n"
        );
        let om = families(Format::OpenMetrics);
        assert!(om.starts_with("# HELP redis_x X\n# TYPE redis_x counter\nredis_x_total{"));
        assert!(om.contains("# TYPE redis_y unknown\n"));
        assert!(om.ends_with(
            "# HELP redis_s_count S\n# TYPE redis_s_count unknown\nredis_s_count{cluster=\"c\"} 2\n"
        ));
        assert!(!om.contains("redis_empty"));
    }

    #[test]
    fn output_is_appended_to_what_the_buffer_held() {
        let mut f = Families::new(Format::Text, "c", String::from("# head\n"));
        f.gauge("redis_g", "G", [(Labels::new(), 1.0)]);
        assert_eq!(
            &f.finish("# EOF\n")[..],
            b"# head\n# HELP redis_g G\n# TYPE redis_g gauge\nredis_g{cluster=\"c\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn a_gzipped_render_is_the_plain_one_compressed_whatever_its_size() {
        use std::io::Read as _;
        let write = |mut f: Families| {
            for i in 0..4 {
                // Families of about 1 MB each, so the text is spilled several times.
                let samples = (0..20_000).map(|n| (vec![("n", Cow::Owned(n.to_string()))], 1.0));
                f.add(format!("redis_f{i}"), "F", Kind::Gauge, samples);
            }
            f.finish("# EOF\n")
        };
        let plain = write(Families::new(
            Format::OpenMetrics,
            "c",
            String::from("# head\n"),
        ));
        let gz = write(Families::gzipped(
            Format::OpenMetrics,
            "c",
            String::from("# head\n"),
            0,
        ));
        assert!(plain.len() > 4 * SPILL_AT && gz.len() < plain.len() / 4);
        let mut unzipped = Vec::new();
        let read = flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut unzipped);
        assert!(read.is_ok());
        assert_eq!(unzipped, plain);
    }
}
