//! Parser for the `CLUSTER NODES` reply: one line per node as the replying node sees it.
//!
//! Format: `id addr flags master ping_sent pong_recv config_epoch link_state slot...`, where addr is
//! `ip:port@cport[,hostname[,key=value...]]` (no `@cport` before 4.0; IPv6 without brackets).

use super::ParseError;

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A node's client address as announced in CLUSTER NODES.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// IP (or host) without brackets, as printed.
    pub host: String,
    /// Client port.
    pub port: u16,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The flags of one CLUSTER NODES line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeFlags {
    /// `myself`: the line describes the replying node.
    pub myself: bool,
    /// `master`.
    pub master: bool,
    /// `slave` or `replica`.
    pub replica: bool,
    /// `fail?`: the replying node suspects this node (PFAIL).
    pub pfail: bool,
    /// `fail`: the cluster agreed this node failed.
    pub fail: bool,
    /// `handshake`: not yet a member; the id is temporary.
    pub handshake: bool,
    /// `noaddr`: the address is unknown.
    pub noaddr: bool,
    /// `nofailover`: the replica will never try to fail over.
    pub nofailover: bool,
}

/// An inclusive range of hash slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
}

impl SlotRange {
    /// Number of slots in the range.
    pub fn len(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Always false: a range holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl std::fmt::Display for SlotRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A slot in the middle of a move, as listed on the `myself` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSlot {
    /// The slot.
    pub slot: u16,
    /// The other node's id (destination when migrating, source when importing).
    pub peer: String,
}

/// One line of CLUSTER NODES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    /// 40-character node id.
    pub id: String,
    /// Client address, `None` for `noaddr` / `:0` nodes.
    pub addr: Option<NodeAddr>,
    /// Announced hostname (7.0+), when non-empty.
    pub hostname: Option<String>,
    /// Flags.
    pub flags: NodeFlags,
    /// The master's id, for replicas.
    pub master_id: Option<String>,
    /// Milliseconds timestamp of the pending ping, 0 if none.
    pub ping_sent: u64,
    /// Milliseconds timestamp of the last pong.
    pub pong_recv: u64,
    /// Config epoch (for a replica, its master's).
    pub config_epoch: u64,
    /// `link_state` is `connected`.
    pub connected: bool,
    /// Slots served, as ranges.
    pub slots: Vec<SlotRange>,
    /// `[slot->-id]` entries: slots this node is migrating away.
    pub migrating: Vec<OpenSlot>,
    /// `[slot-<-id]` entries: slots this node is importing.
    pub importing: Vec<OpenSlot>,
}

impl NodeLine {
    /// Number of slots the line lists.
    pub fn slot_count(&self) -> u32 {
        self.slots.iter().map(SlotRange::len).sum()
    }
}

/// A parsed CLUSTER NODES reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterNodes {
    /// Well-formed lines, in reply order.
    pub nodes: Vec<NodeLine>,
    /// Lines that were not understood and skipped.
    pub malformed_lines: usize,
}

impl ClusterNodes {
    /// The replying node's own line.
    pub fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.flags.myself)
    }
}

/// One line of CLUSTER NODES borrowing its text from the reply: what [`NodeLine`] holds, without
/// copying the strings (the compact topology interns them instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRef<'a> {
    /// Node id.
    pub id: &'a str,
    /// Client address as (host without brackets, port), `None` for `noaddr` / `:0` nodes.
    pub addr: Option<(&'a str, u16)>,
    /// Announced hostname (7.0+), when non-empty.
    pub hostname: Option<&'a str>,
    /// Flags.
    pub flags: NodeFlags,
    /// The master's id, for replicas.
    pub master_id: Option<&'a str>,
    /// Milliseconds timestamp of the pending ping, 0 if none.
    pub ping_sent: u64,
    /// Milliseconds timestamp of the last pong.
    pub pong_recv: u64,
    /// Config epoch (for a replica, its master's).
    pub config_epoch: u64,
    /// `link_state` is `connected`.
    pub connected: bool,
    /// Slots served, as ranges.
    pub slots: Vec<SlotRange>,
    /// `[slot->-id]` entries as (slot, destination id).
    pub migrating: Vec<(u16, &'a str)>,
    /// `[slot-<-id]` entries as (slot, source id).
    pub importing: Vec<(u16, &'a str)>,
}

impl From<LineRef<'_>> for NodeLine {
    fn from(l: LineRef<'_>) -> NodeLine {
        let open = |v: Vec<(u16, &str)>| {
            v.into_iter()
                .map(|(slot, peer)| OpenSlot {
                    slot,
                    peer: peer.to_string(),
                })
                .collect()
        };
        NodeLine {
            id: l.id.to_string(),
            addr: l.addr.map(|(host, port)| NodeAddr {
                host: host.to_string(),
                port,
            }),
            hostname: l.hostname.map(str::to_string),
            flags: l.flags,
            master_id: l.master_id.map(str::to_string),
            ping_sent: l.ping_sent,
            pong_recv: l.pong_recv,
            config_epoch: l.config_epoch,
            connected: l.connected,
            slots: l.slots,
            migrating: open(l.migrating),
            importing: open(l.importing),
        }
    }
}

/// The non-empty lines of a CLUSTER NODES reply in order, each parsed (`None` when malformed).
pub fn parse_lines(text: &str) -> impl Iterator<Item = Option<LineRef<'_>>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_line)
}

/// Parses a CLUSTER NODES reply. Malformed lines are skipped and counted; a reply with no
/// well-formed line at all is an error.
pub fn parse_cluster_nodes(text: &str) -> Result<ClusterNodes, ParseError> {
    let mut out = ClusterNodes::default();
    for line in parse_lines(text) {
        match line {
            Some(node) => out.nodes.push(node.into()),
            None => out.malformed_lines += 1,
        }
    }
    if out.nodes.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(out)
}

/// Address (host, port) and hostname of an `ip:port@cport[,hostname[,k=v...]]` field.
type AddrField<'a> = (Option<(&'a str, u16)>, Option<&'a str>);

fn parse_addr(field: &str) -> Option<AddrField<'_>> {
    let mut parts = field.split(',');
    let main = parts.next()?;
    let hostname = parts.next().filter(|h| !h.is_empty() && !h.contains('='));
    let ip_port = main.split_once('@').map_or(main, |(a, _cport)| a);
    let (host, port) = ip_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Some((None, hostname));
    }
    Some((Some((host, port)), hostname))
}

fn parse_slot(s: &str) -> Option<u16> {
    let n: u16 = s.parse().ok()?;
    (n < SLOT_COUNT).then_some(n)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn parse_flags(field: &str) -> NodeFlags {
    let mut flags = NodeFlags::default();
    for flag in field.split(',') {
        match flag {
            "myself" => flags.myself = true,
            "master" => flags.master = true,
            "slave" | "replica" => flags.replica = true,
            "fail?" => flags.pfail = true,
            "fail" => flags.fail = true,
            "handshake" => flags.handshake = true,
            "noaddr" => flags.noaddr = true,
            "nofailover" => flags.nofailover = true,
            _ => {} // noflags and future flags
        }
    }
    flags
}

fn parse_line(line: &str) -> Option<LineRef<'_>> {
    let mut fields = line.split_ascii_whitespace();
    let id = fields.next()?;
    let addr_field = fields.next()?;
    let flags_field = fields.next()?;
    let master = fields.next()?;
    let ping_sent = fields.next()?.parse().ok()?;
    let pong_recv = fields.next()?.parse().ok()?;
    let config_epoch = fields.next()?.parse().ok()?;
    let link = fields.next()?;
    if !valid_id(id) {
        return None;
    }
    let (addr, hostname) = parse_addr(addr_field)?;
    let flags = parse_flags(flags_field);
    let master_id = match master {
        "-" => None,
        m if valid_id(m) => Some(m),
        _ => return None,
    };
    let connected = match link {
        "connected" => true,
        "disconnected" => false,
        _ => return None,
    };
    let mut node = LineRef {
        id,
        addr: if flags.noaddr { None } else { addr },
        hostname,
        flags,
        master_id,
        ping_sent,
        pong_recv,
        config_epoch,
        connected,
        slots: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
    };
    for slot in fields {
        parse_slot_field(slot, &mut node)?;
    }
    Some(node)
}

/// One slot field (`n`, `a-b`, `[n->-id]`, `[n-<-id]`) into the line; `None` when malformed.
fn parse_slot_field<'a>(slot: &'a str, node: &mut LineRef<'a>) -> Option<()> {
    if let Some(inner) = slot.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Some((s, peer)) = inner.split_once("->-") {
            node.migrating.push((parse_slot(s)?, peer));
        } else if let Some((s, peer)) = inner.split_once("-<-") {
            node.importing.push((parse_slot(s)?, peer));
        } else {
            return None;
        }
    } else if let Some((a, b)) = slot.split_once('-') {
        let (start, end) = (parse_slot(a)?, parse_slot(b)?);
        if start > end {
            return None;
        }
        node.slots.push(SlotRange { start, end });
    } else {
        let s = parse_slot(slot)?;
        node.slots.push(SlotRange { start: s, end: s });
    }
    Some(())
}

/// Formats ranges as `0-5460,5461` style text.
pub fn format_ranges(ranges: &[SlotRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Collapses a sorted list of slots into ranges.
pub fn slots_to_ranges(slots: impl IntoIterator<Item = u16>) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for s in slots {
        match out.last_mut() {
            Some(r) if u32::from(r.end) + 1 == u32::from(s) => r.end = s,
            _ => out.push(SlotRange { start: s, end: s }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_FAIL: &str = "dbb0922066607414a84dc5cd9835f073033c11bb 192.168.0.182:6379@16379 slave 314a87796f7365f49bc9bf5f04edfbd5cb339d0b 0 1765372569760 2 connected
1a26d03a8f9ee8026e32abc1092e25bf4a63d2da 192.168.0.6:6379@16379 master,fail - 1765372477043 1765372475529 7 disconnected
ea005587a13b7b50cbc498da976abcf7e44b1a2d 192.168.0.161:6379@16379 myself,master - 0 0 8 connected 0-5460
";

    #[test]
    fn parses_failed_master_and_myself() {
        let nodes = parse_cluster_nodes(SEED_FAIL).unwrap();
        assert_eq!(nodes.nodes.len(), 3);
        let failed = &nodes.nodes[1];
        assert!(failed.flags.master && failed.flags.fail && !failed.connected);
        assert_eq!(failed.config_epoch, 7);
        let me = nodes.myself().unwrap();
        assert_eq!(me.slot_count(), 5461);
        assert_eq!(me.addr.as_ref().unwrap().to_string(), "192.168.0.161:6379");
        assert_eq!(
            nodes.nodes[0].master_id.as_deref(),
            Some("314a87796f7365f49bc9bf5f04edfbd5cb339d0b")
        );
    }

    #[test]
    fn open_slots_ipv6_noaddr_and_garbage() {
        let text = "aaaa ::1:7000@17000,host1 myself,master - 0 0 1 connected 0-10 12 [11->-bbbb] [13-<-cccc]\n\
                    bbbb :0@0 master,noaddr - 0 0 0 disconnected\n\
                    garbage line\n";
        let n = parse_cluster_nodes(text).unwrap();
        assert_eq!(n.malformed_lines, 1);
        let me = &n.nodes[0];
        assert_eq!(me.addr.as_ref().unwrap().host, "::1");
        assert_eq!(me.addr.as_ref().unwrap().to_string(), "[::1]:7000");
        assert_eq!(me.hostname.as_deref(), Some("host1"));
        assert_eq!(me.slot_count(), 12);
        assert_eq!(
            me.migrating,
            vec![OpenSlot {
                slot: 11,
                peer: "bbbb".into()
            }]
        );
        assert_eq!(me.importing[0].slot, 13);
        assert!(n.nodes[1].addr.is_none());
        assert!(parse_cluster_nodes("x y\n").is_err());
        assert!(parse_cluster_nodes("aaaa 1.2.3.4:1 master - 0 0 1 connected 20000\n").is_err());
    }

    #[test]
    fn ranges_roundtrip() {
        let r = slots_to_ranges([0, 1, 2, 5, 7, 8]);
        assert_eq!(format_ranges(&r), "0-2,5,7-8");
    }
}
