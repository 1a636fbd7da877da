//! Pure parsers for the replies the poller collects: the text of CLUSTER INFO, CLUSTER NODES and
//! INFO, the decoded RESP array of CLUSTER SLOT-STATS, and the framing of RESP replies in the
//! client's read buffer.
//!
//! Nothing here does IO and nothing here panics on any input: every function takes the reply
//! and returns typed values or a [`ParseError`]. Unknown fields are ignored so newer servers work.

pub mod cluster_info;
pub mod cluster_nodes;
pub mod info;
pub mod resp;
pub mod slot_stats;

/// Why a reply could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field every supported server sends is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has a value of the wrong shape.
    #[error("bad value for {field}")]
    BadValue {
        /// Name of the field.
        field: &'static str,
    },
    /// The reply has no usable line at all.
    #[error("empty reply")]
    Empty,
}

/// Splits `key:value` lines of INFO-style text, skipping comments and blank lines.
///
/// Lines are split on the first `:`; `\r` is trimmed. Lines without a colon are skipped.
pub(crate) fn kv_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        line.split_once(':')
    })
}
