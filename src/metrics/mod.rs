//! Prometheus metrics: one collector per area, each reading the snapshot and writing its
//! families, none knowing the others. Plain INFO fields come from one table
//! ([`table::INFO_METRICS`]); the encoder ([`encode`]) writes classic text or OpenMetrics.
//! The exporter's accumulating metrics (poll histogram, error and event counters) live in
//! [`ExporterMetrics`] and are encoded by `prometheus-client`. The HTTP layer calls
//! [`render_with_hint`] on the first scrape of a format and [`Encoding`] after a poll; later
//! scrapes of that format, encoding and poll share its bytes.

pub mod cluster;
pub mod commands;
pub mod encode;
pub mod events;
pub mod exporter;
pub mod keyspace;
pub mod memory;
pub mod node;
pub mod persistence;
pub mod replication;
pub mod risk;
pub mod slots;
pub mod stats;
pub mod table;
pub mod topology;

use crate::model::{NodeData, NodeObservation, Snapshot};
pub use encode::{Families, Kind, Labels};
pub use exporter::ExporterMetrics;
use prometheus_client::encoding::text::encode as encode_registry;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use table::{Area, INFO_METRICS};

/// Label set of a `prometheus-client` family (owned: it lives as long as the family).
pub type FamilyLabels = Vec<(&'static str, String)>;

/// Content type of the classic text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a collector reads.
pub struct Context<'a> {
    /// The poll round.
    pub snapshot: &'a Snapshot,
    /// The exporter's accumulating metrics.
    pub persistent: &'a ExporterMetrics,
}

impl<'a> Context<'a> {
    /// Every node that answered, with its address.
    pub fn answered(&self) -> impl Iterator<Item = (&'a str, &'a NodeData)> + 'a {
        self.snapshot
            .observations
            .values()
            .filter_map(|o: &'a NodeObservation| Some((o.addr.as_str(), o.data()?)))
    }

    /// One series per answering node for which `f` gives a value.
    pub fn per_node(&self, f: impl Fn(&NodeData) -> Option<f64>) -> Vec<(Labels<'a>, f64)> {
        self.answered()
            .filter_map(|(a, d)| Some((addr(a), f(d)?)))
            .collect()
    }
}

/// A family read from one value per series: `(metric name, help, value)`.
pub type Row<T> = (&'static str, &'static str, fn(&T) -> f64);
/// A family read from a value that may be absent: `(metric name, help, value)`.
pub type OptRow<T> = (&'static str, &'static str, fn(&T) -> Option<f64>);

/// One area of metrics.
pub trait Collector: Sync {
    /// Registers this area's accumulating `prometheus-client` metrics, if it has any. Every
    /// collector registers before any writes its families: the registry's part is written first.
    fn register(&self, _cx: &Context<'_>, _registry: &mut Registry) {}

    /// Writes this area's families for the snapshot into `out`.
    fn collect(&self, cx: &Context<'_>, out: &mut Families);
}

/// Every collector, in the order their families appear.
pub const COLLECTORS: &[&dyn Collector] = &[
    &exporter::Exporter,
    &node::Node,
    &cluster::Cluster,
    &topology::Topology,
    &risk::Risk,
    &slots::HotSlots,
    &replication::Replication,
    &memory::Memory,
    &stats::Stats,
    &persistence::Persistence,
    &commands::Commands,
    &keyspace::Keyspace,
    &events::Events,
];

/// The `addr` label alone.
pub fn addr(a: &str) -> Labels<'_> {
    vec![("addr", Cow::Borrowed(a))]
}

/// 1 for true, 0 for false.
pub fn bool_value(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// Writes the table rows of one area: per node, the field scaled; a field the node does not
/// report gives no series (and one no node reports, no family), and a count below zero from a
/// broken server is left out rather than published as a counter going negative. Replication
/// fields come from this poll's INFO replication only (a replica promoted since the last INFO all
/// no longer reports `slave_priority`), the others from the latest INFO all.
pub fn collect_area(area: Area, cx: &Context<'_>, out: &mut Families) {
    let counts = |k: Kind| matches!(k, Kind::Counter | Kind::CounterNoTotal);
    for row in INFO_METRICS.iter().filter(|r| r.area == area) {
        let samples = cx.per_node(|d| {
            let info = if area == Area::Replication {
                Some(&d.info)
            } else {
                d.stats_info()
            };
            let v = info?.field(row.field)? * row.scale;
            (!counts(row.kind) || v >= 0.0).then_some(v)
        });
        out.add(row.name, row.help, row.kind, samples);
    }
}

/// The two formats `/metrics` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The classic Prometheus text format (0.0.4).
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// 0 or 1: this format's place in per-format arrays.
    pub fn index(self) -> usize {
        match self {
            Format::Text => 0,
            Format::OpenMetrics => 1,
        }
    }
}

/// How a body is sent: as rendered, or gzipped (which Prometheus always accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The text itself.
    Plain,
    /// Gzipped, compressed as it is rendered.
    Gzip,
}

impl Encoding {
    /// 0 or 1: this encoding's place in per-encoding arrays.
    pub fn index(self) -> usize {
        match self {
            Encoding::Plain => 0,
            Encoding::Gzip => 1,
        }
    }
}

/// The gzip level of every body. Measured with the zlib-rs backend on the 4.5 MB body of 100
/// simulated nodes: level 1 gives 397 KB in 5.4 ms, level 2 306 KB in 6.2 ms, level 4 259 KB in
/// 10.5 ms, level 6 235 KB in 25 ms. Level 2 is nearly as cheap as 1 and a quarter smaller,
/// which is what a body sent to every scraper is worth.
pub const GZIP_LEVEL: flate2::Compression = flate2::Compression::new(2);

/// A gzipped copy of a body ([`GZIP_LEVEL`]: a scrape-sized body in a few milliseconds).
pub fn gzip(plain: &[u8]) -> bytes::Bytes {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 8), GZIP_LEVEL);
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(plain);
    gz.finish().unwrap_or_default().into()
}

/// Runs every collector over the snapshot and renders it in one format.
pub fn render(
    snapshot: &Snapshot,
    persistent: &ExporterMetrics,
    cluster: &str,
    format: Format,
) -> bytes::Bytes {
    render_with_hint(snapshot, persistent, cluster, format, Encoding::Plain, 0)
}

/// [`render`] in `encoding`, into one buffer sized from `last_len`, the length of the previous
/// render in this format and encoding (0: none yet, guessed from the number of nodes), with room
/// to grow a little: a multi-megabyte body is written once, not copied at every doubling of its
/// buffer. Each family is encoded as its collector adds it; no sample is kept beyond its family.
/// Gzipped, the text is compressed as it is written, so the plain body never exists whole.
pub fn render_with_hint(
    snapshot: &Snapshot,
    persistent: &ExporterMetrics,
    cluster: &str,
    format: Format,
    encoding: Encoding,
    last_len: usize,
) -> bytes::Bytes {
    let cx = Context {
        snapshot,
        persistent,
    };
    let mut registry = Registry::with_labels(std::iter::once((
        Cow::Borrowed("cluster"),
        Cow::Owned(cluster.to_string()),
    )));
    for c in COLLECTORS {
        c.register(&cx, &mut registry);
    }
    // A first guess of 12 KB of text per node, a tenth of that once gzipped.
    let guess = (64 + 12 * snapshot.observations.len()) * 1024;
    let capacity = match (last_len, encoding) {
        (0, Encoding::Plain) => guess,
        (0, Encoding::Gzip) => guess / 10,
        (n, _) => n + n / 8 + 4096,
    };
    let trailer = match format {
        Format::OpenMetrics => "# EOF\n",
        Format::Text => "",
    };
    let mut families = match encoding {
        Encoding::Plain => {
            let mut out = String::with_capacity(capacity);
            encode_registry_into(&registry, format, &mut out);
            Families::new(format, cluster, out)
        }
        Encoding::Gzip => {
            let mut out = String::with_capacity(384 * 1024);
            encode_registry_into(&registry, format, &mut out);
            Families::gzipped(format, cluster, out, capacity)
        }
    };
    for c in COLLECTORS {
        c.collect(&cx, &mut families);
    }
    families.finish(trailer)
}

/// Appends the registry's metrics to `out` in `format` (in OpenMetrics without the `# EOF`,
/// which ends the whole body).
fn encode_registry_into(registry: &Registry, format: Format, out: &mut String) {
    match format {
        Format::OpenMetrics => {
            let start = out.len();
            // Writing to a String cannot fail.
            let _ = encode_registry(out, registry);
            if out[start..].ends_with("# EOF\n") {
                out.truncate(out.len() - "# EOF\n".len());
            }
        }
        Format::Text => {
            let mut om = String::with_capacity(16 * 1024);
            let _ = encode_registry(&mut om, registry);
            out.push_str(&to_classic_text(&om));
        }
    }
}

/// Converts prometheus-client's OpenMetrics output to the classic text format: no `# EOF` or
/// `# UNIT`, counters' HELP/TYPE on the `_total` sample name, `info` families as gauges.
pub fn to_classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, help)) = rest.split_once(' ') {
                pending_help = Some((name, help));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let Some((name, kind)) = rest.split_once(' ') else {
                continue;
            };
            let (name, kind): (Cow<str>, &str) = match kind {
                "counter" => (format!("{name}_total").into(), "counter"),
                "info" => (format!("{name}_info").into(), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.into(), "untyped"),
                k => (name.into(), k),
            };
            if let Some((help_name, help)) = pending_help.take()
                && Some(help_name) == rest.split_once(' ').map(|(n, _)| n)
            {
                out.push_str("# HELP ");
                out.push_str(&name);
                out.push(' ');
                out.push_str(help);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_conversion() {
        let om = "# HELP a_x Some help.\n# TYPE a_x counter\na_x_total{l=\"1\"} 3\n# HELP b Build.\n# TYPE b info\nb_info{version=\"1\"} 1\n# HELP c_bytes C.\n# TYPE c_bytes gauge\n# UNIT c_bytes bytes\nc_bytes 1\n# EOF\n";
        let text = to_classic_text(om);
        assert_eq!(
            text,
            "# HELP a_x_total Some help.\n# TYPE a_x_total counter\na_x_total{l=\"1\"} 3\n# HELP b_info Build.\n# TYPE b_info gauge\nb_info{version=\"1\"} 1\n# HELP c_bytes C.\n# TYPE c_bytes gauge\nc_bytes 1\n"
        );
    }

    #[test]
    fn table_names_are_unique_and_counters_end_in_total() {
        let mut names: Vec<&str> = INFO_METRICS.iter().map(|r| r.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a metric name twice in the table");
        for r in INFO_METRICS {
            assert_eq!(
                r.kind == Kind::Counter,
                r.name.ends_with("_total") && r.kind != Kind::Gauge,
                "{}",
                r.name
            );
        }
    }
}
