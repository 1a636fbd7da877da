//! The compact topology of one observer: its CLUSTER NODES reply kept as fixed-size records over
//! interned node ids and endpoints, its slot claims as ranges shared between observers that make
//! the same ones, and its own (`myself`) line in full. Pure (no IO); the interner is the only
//! shared state.
//!
//! At N members the exporter holds N views of N lines each. Parsed lines with owned strings cost
//! ~0.4 KB each (400 MB at 1000 nodes); a [`PeerLine`] is 40 bytes. Node ids and endpoints are
//! interned for the life of the process: they are bounded by the distinct ids and addresses the
//! cluster ever had (handshake lines, whose ids are temporary, are kept in full, not interned).

use crate::parse::ParseError;
use crate::parse::cluster_nodes::{LineRef, NodeAddr, NodeFlags, NodeLine, parse_lines};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// FNV-1a, 64 bits: a fixed, well-spread hash of short keys (addresses, node ids, interned
/// indexes), much cheaper than the randomly seeded SipHash of the std maps; nothing here is keyed
/// by input an attacker could choose to collide (ids and addresses come from the cluster itself).
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes
            .iter()
            .fold(self.0, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME));
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// A hash map hashed with [`Fnv`].
pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
/// A hash set hashed with [`Fnv`].
pub type FnvSet<K> = HashSet<K, BuildHasherDefault<Fnv>>;

struct IdEntry {
    id: Box<str>,
    index: u32,
}

/// An interned node id: a pointer, compared and hashed by identity, ordered by text.
#[derive(Clone, Copy)]
pub struct NodeId(&'static IdEntry);

#[derive(Default)]
struct Interner {
    ids: FnvMap<&'static str, &'static IdEntry>,
    /// Endpoints by the FNV hash of (host, port, hostname); a bucket holds the rare collisions.
    endpoints: FnvMap<u64, Vec<&'static Endpoint>>,
    /// The last claims list built: the next observer's is normally the same one.
    last_claims: Option<Arc<[Claim]>>,
    /// Every line some topology holds: the observers that say the same about a node share it.
    lines: FnvSet<Arc<PeerLine>>,
    /// Size of `lines` after its last sweep of lines no topology holds any more.
    lines_swept: usize,
}

impl Interner {
    /// The shared copy of a line. Lines no topology holds any more are dropped whenever the
    /// table has doubled since the last sweep (amortised constant time, bounded memory).
    fn share_line(&mut self, line: PeerLine) -> Arc<PeerLine> {
        if let Some(l) = self.lines.get(&line) {
            return Arc::clone(l);
        }
        if self.lines.len() >= (2 * self.lines_swept).max(4096) {
            self.lines.retain(|l| Arc::strong_count(l) > 1);
            self.lines_swept = self.lines.len();
        }
        let l = Arc::new(line);
        self.lines.insert(Arc::clone(&l));
        l
    }
}

fn interner() -> std::sync::MutexGuard<'static, Interner> {
    static TABLE: OnceLock<Mutex<Interner>> = OnceLock::new();
    let table = TABLE.get_or_init(Mutex::default);
    // A panic while the lock was held cannot leave the maps half-updated (one insert each).
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl NodeId {
    /// The interned id for this text (interned on first sight, never freed).
    pub fn intern(id: &str) -> NodeId {
        intern_id(&mut interner(), id)
    }

    /// The id's text.
    pub fn as_str(self) -> &'static str {
        &self.0.id
    }

    /// A dense number, unique per id in this process.
    pub fn index(self) -> u32 {
        self.0.index
    }
}

fn intern_id(table: &mut Interner, id: &str) -> NodeId {
    if let Some(e) = table.ids.get(id) {
        return NodeId(e);
    }
    let index = u32::try_from(table.ids.len()).unwrap_or(u32::MAX);
    let entry: &'static IdEntry = Box::leak(Box::new(IdEntry {
        id: id.into(),
        index,
    }));
    table.ids.insert(&entry.id, entry);
    NodeId(entry)
}

impl PartialEq for NodeId {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for NodeId {}
impl Hash for NodeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.0.index);
    }
}
impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Where a line says a node is: client address, announced hostname, and the address as text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Client address, `None` for `noaddr` / `:0` nodes.
    pub addr: Option<NodeAddr>,
    /// Announced hostname (7.0+), when non-empty.
    pub hostname: Option<String>,
    /// `addr` as `host:port` text.
    pub text: Option<String>,
}

fn same_endpoint(e: &Endpoint, addr: Option<(&str, u16)>, hostname: Option<&str>) -> bool {
    e.hostname.as_deref() == hostname && e.addr.as_ref().map(|a| (a.host.as_str(), a.port)) == addr
}

fn intern_endpoint(
    table: &mut Interner,
    addr: Option<(&str, u16)>,
    hostname: Option<&str>,
) -> &'static Endpoint {
    let mut h = Fnv::default();
    (addr, hostname).hash(&mut h);
    let bucket = table.endpoints.entry(h.finish()).or_default();
    if let Some(e) = bucket.iter().find(|e| same_endpoint(e, addr, hostname)) {
        return e;
    }
    let addr = addr.map(|(host, port)| NodeAddr {
        host: host.to_string(),
        port,
    });
    let e: &'static Endpoint = Box::leak(Box::new(Endpoint {
        text: addr.as_ref().map(ToString::to_string),
        addr,
        hostname: hostname.map(str::to_string),
    }));
    bucket.push(e);
    e
}

const F_MYSELF: u16 = 1;
const F_MASTER: u16 = 1 << 1;
const F_REPLICA: u16 = 1 << 2;
const F_PFAIL: u16 = 1 << 3;
const F_FAIL: u16 = 1 << 4;
const F_NOADDR: u16 = 1 << 5;
const F_NOFAILOVER: u16 = 1 << 6;
const F_CONNECTED: u16 = 1 << 7;
const F_SLOTS: u16 = 1 << 8;

/// One non-handshake line of CLUSTER NODES without its slots (those are in the claims) and
/// without ping/pong times (nothing reads them): 40 bytes.
#[derive(Debug, Clone, Copy)]
pub struct PeerLine {
    /// The node the line is about.
    pub id: NodeId,
    /// The master's id, for replicas.
    pub master_id: Option<NodeId>,
    /// Address and hostname.
    pub endpoint: &'static Endpoint,
    /// Config epoch (for a replica, its master's).
    pub config_epoch: u64,
    bits: u16,
}

impl PartialEq for PeerLine {
    fn eq(&self, other: &Self) -> bool {
        // Endpoints are interned: the same one is the same pointer.
        self.id == other.id
            && self.master_id == other.master_id
            && std::ptr::eq(self.endpoint, other.endpoint)
            && self.config_epoch == other.config_epoch
            && self.bits == other.bits
    }
}
impl Eq for PeerLine {}
impl Hash for PeerLine {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.master_id.hash(state);
        std::ptr::hash(self.endpoint, state);
        state.write_u64(self.config_epoch);
        state.write_u16(self.bits);
    }
}

impl PeerLine {
    /// The line's flags (`handshake` is never set: such lines are kept apart).
    pub fn flags(&self) -> NodeFlags {
        let b = |f: u16| self.bits & f != 0;
        NodeFlags {
            myself: b(F_MYSELF),
            master: b(F_MASTER),
            replica: b(F_REPLICA),
            pfail: b(F_PFAIL),
            fail: b(F_FAIL),
            handshake: false,
            noaddr: b(F_NOADDR),
            nofailover: b(F_NOFAILOVER),
        }
    }

    /// `link_state` is `connected`.
    pub fn connected(&self) -> bool {
        self.bits & F_CONNECTED != 0
    }

    /// The observer lists at least one slot for the node.
    pub fn serves_slots(&self) -> bool {
        self.bits & F_SLOTS != 0
    }

    /// Client address as `host:port`, when known.
    pub fn addr_text(&self) -> Option<&'static str> {
        self.endpoint.text.as_deref()
    }

    /// The compact line; `like` is the line at the same place in the node's previous reply,
    /// whose interned id, master and endpoint are taken when they match (no hashing).
    fn of(table: &mut Interner, line: &LineRef<'_>, like: Option<&PeerLine>) -> PeerLine {
        let f = line.flags;
        let bits = [
            (f.myself, F_MYSELF),
            (f.master, F_MASTER),
            (f.replica, F_REPLICA),
            (f.pfail, F_PFAIL),
            (f.fail, F_FAIL),
            (f.noaddr, F_NOADDR),
            (f.nofailover, F_NOFAILOVER),
            (line.connected, F_CONNECTED),
            (!line.slots.is_empty(), F_SLOTS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit);
        let id = match like {
            Some(l) if l.id.as_str() == line.id => l.id,
            _ => intern_id(table, line.id),
        };
        let master_id = match (like, line.master_id) {
            (Some(l), m) if l.master_id.map(NodeId::as_str) == m => l.master_id,
            (_, m) => m.map(|m| intern_id(table, m)),
        };
        let endpoint = match like {
            Some(l) if same_endpoint(l.endpoint, line.addr, line.hostname) => l.endpoint,
            _ => intern_endpoint(table, line.addr, line.hostname),
        };
        PeerLine {
            id,
            master_id,
            endpoint,
            config_epoch: line.config_epoch,
            bits,
        }
    }
}

/// A range of slots one observer assigns to a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
    /// The master the observer says serves them.
    pub owner: NodeId,
}

/// One observer's CLUSTER NODES, compact.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    myself: Option<NodeLine>,
    lines: Vec<Arc<PeerLine>>,
    handshakes: Vec<NodeLine>,
    claims: Arc<[Claim]>,
    /// Lines that were not understood and skipped.
    pub malformed_lines: usize,
}

impl Topology {
    /// Parses a CLUSTER NODES reply into the compact form; like
    /// [`parse_cluster_nodes`](crate::parse::cluster_nodes::parse_cluster_nodes), malformed lines
    /// are skipped and counted and a reply with no well-formed line is an error.
    pub fn parse(text: &str) -> Result<Topology, ParseError> {
        Topology::build(text, None, &mut interner())
    }

    /// [`Topology::parse`] of a node's new reply given its previous one: lines that name the
    /// same ids and endpoints as the line at the same place before reuse them (the usual case,
    /// which then costs no hashing).
    pub fn parse_after(text: &str, previous: Option<&Topology>) -> Result<Topology, ParseError> {
        Topology::build(text, previous, &mut interner())
    }

    /// The replying node's own line, in full (slots, open slots, address, hostname) but for its
    /// ping and pong times, which read as 0.
    pub fn myself(&self) -> Option<&NodeLine> {
        self.myself.as_ref()
    }

    /// Every line but the handshake ones, in reply order (the `myself` line included).
    pub fn lines(&self) -> &[Arc<PeerLine>] {
        &self.lines
    }

    /// Lines of nodes still in handshake (temporary ids), in full.
    pub fn handshakes(&self) -> &[NodeLine] {
        &self.handshakes
    }

    /// The slot ranges of every non-handshake master line, sorted by start slot.
    pub fn claims(&self) -> &Arc<[Claim]> {
        &self.claims
    }
}

impl Topology {
    fn build(
        text: &str,
        previous: Option<&Topology>,
        table: &mut Interner,
    ) -> Result<Topology, ParseError> {
        let mut out = Topology {
            myself: None,
            lines: Vec::new(),
            handshakes: Vec::new(),
            claims: Arc::from(Vec::new()),
            malformed_lines: 0,
        };
        let mut claims = Vec::new();
        for line in parse_lines(text) {
            let Some(line) = line else {
                out.malformed_lines += 1;
                continue;
            };
            let like = previous.and_then(|p| p.lines.get(out.lines.len()));
            out.add(line, like, table, &mut claims);
        }
        if out.lines.is_empty() && out.handshakes.is_empty() {
            return Err(ParseError::Empty);
        }
        claims.sort_unstable_by_key(|c| (c.start, c.end, c.owner.as_str()));
        out.claims = match &table.last_claims {
            Some(last) if **last == *claims => Arc::clone(last),
            _ => {
                let fresh: Arc<[Claim]> = Arc::from(claims);
                table.last_claims = Some(Arc::clone(&fresh));
                fresh
            }
        };
        Ok(out)
    }

    fn add(
        &mut self,
        line: LineRef<'_>,
        like: Option<&Arc<PeerLine>>,
        table: &mut Interner,
        claims: &mut Vec<Claim>,
    ) {
        if line.flags.handshake {
            self.handshakes.push(line.into());
            return;
        }
        let peer = PeerLine::of(table, &line, like.map(|l| &**l));
        if line.flags.master {
            claims.extend(line.slots.iter().map(|r| Claim {
                start: r.start,
                end: r.end,
                owner: peer.id,
            }));
        }
        self.lines.push(match like {
            Some(l) if **l == peer => Arc::clone(l),
            _ => table.share_line(peer),
        });
        if line.flags.myself && self.myself.is_none() {
            // Without its ping/pong times (nothing reads them, and the pong time moves with
            // every reply: two replies that say the same must compare equal).
            self.myself = Some(NodeLine {
                ping_sent: 0,
                pong_recv: 0,
                ..line.into()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        FailureReason, NodeData, NodeObservation, PollFailure, ViewCache, derive_view,
        derive_view_cached,
    };
    use crate::parse::cluster_nodes::parse_cluster_nodes;
    use crate::parse::{cluster_info, info};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    /// CLUSTER NODES of a 3-master, 1-replica cluster as node `me` sees it (`d` replicates `a`,
    /// and `me` flags `c` `fail?` unless it is `c`).
    fn nodes_text(me: char) -> String {
        let mut out = String::new();
        for (c, port, role, master, slots) in [
            ('a', 7000, "master", "-", "0-5460"),
            ('b', 7001, "master", "-", "5461-10922"),
            ('c', 7002, "master", "-", "10923-16383"),
            ('d', 7003, "slave", "a", ""),
        ] {
            let mut flags = if c == me {
                format!("myself,{role}")
            } else {
                role.to_string()
            };
            if c == 'c' && me != 'c' {
                flags.push_str(",fail?");
            }
            let master = if master == "-" {
                "-".to_string()
            } else {
                id('a')
            };
            out.push_str(&format!(
                "{} 127.0.0.1:{port}@1{port},h{c} {flags} {master} 0 0 1 connected {slots}\n",
                id(c)
            ));
        }
        out
    }

    fn observation(me: char, offset: u64, topology: &Arc<Topology>) -> NodeObservation {
        let port = 7000 + u32::from(me) - u32::from('a');
        let inf = format!("role:master\nmaster_repl_offset:{offset}\n");
        NodeObservation {
            addr: format!("127.0.0.1:{port}"),
            result: Ok(NodeData {
                cluster_info: cluster_info::parse_cluster_info("cluster_state:ok\n").unwrap(),
                nodes: Arc::clone(topology),
                info: info::parse_info(&inf).unwrap(),
                stats: None,
                soft_failures: Vec::new(),
            }),
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn compact_lines_keep_what_the_parsed_ones_say() {
        let text = format!(
            "{}{} 10.0.0.9:7009@17009 handshake - 0 0 0 connected\n",
            nodes_text('b'),
            "e".repeat(40)
        );
        let parsed = parse_cluster_nodes(&text).unwrap();
        let t = Topology::parse(&text).unwrap();
        let me = parsed.myself().map(|m| NodeLine {
            ping_sent: 0,
            pong_recv: 0,
            ..m.clone()
        });
        assert_eq!(t.myself(), me.as_ref());
        assert_eq!(t.handshakes().len(), 1);
        assert_eq!(t.lines().len(), 4);
        for (c, p) in t.lines().iter().zip(&parsed.nodes) {
            assert_eq!(c.id.as_str(), p.id);
            assert_eq!(c.master_id.map(NodeId::as_str), p.master_id.as_deref());
            assert_eq!(c.flags(), p.flags);
            assert_eq!(c.connected(), p.connected);
            assert_eq!(c.endpoint.addr, p.addr);
            assert_eq!(c.endpoint.hostname, p.hostname);
            assert_eq!(c.config_epoch, p.config_epoch);
        }
        let claims: Vec<(u16, u16, &str)> = t
            .claims()
            .iter()
            .map(|c| (c.start, c.end, c.owner.as_str()))
            .collect();
        let (a, b, cc) = (id('a'), id('b'), id('c'));
        assert_eq!(
            claims,
            [(0, 5460, &*a), (5461, 10922, &*b), (10923, 16383, &*cc)]
        );
        assert!(std::mem::size_of::<PeerLine>() <= 40);
    }

    #[test]
    fn same_claims_are_stored_once_and_ids_compare_by_identity() {
        // A table of its own: tests running alongside share the process-wide one.
        let mut table = Interner::default();
        let parse = |c, table: &mut Interner| Topology::build(&nodes_text(c), None, table).unwrap();
        let a = parse('a', &mut table);
        let b = parse('b', &mut table);
        assert!(Arc::ptr_eq(a.claims(), b.claims()));
        assert_ne!(a, b);
        assert_eq!(a, parse('a', &mut table));
        let later = nodes_text('a').replace(" 0 0 1 ", " 7 1700000000000 1 ");
        let later = Topology::build(&later, Some(&a), &mut table).unwrap();
        assert_eq!(a, later, "ping and pong times are not part of the topology");
        let b_text = nodes_text('b');
        let reversed = b_text.lines().rev().collect::<Vec<_>>().join("\n");
        assert_eq!(
            Topology::build(&reversed, Some(&a), &mut table),
            Topology::build(&reversed, None, &mut table),
            "lines that moved are interned afresh"
        );
        assert_eq!(intern_id(&mut table, &id('a')), a.lines()[0].id);
        assert_ne!(intern_id(&mut table, &id('b')), a.lines()[0].id);
        assert_ne!(NodeId::intern(&id('a')), a.lines()[0].id, "another table");
        assert_eq!(NodeId::intern(&id('a')).as_str(), a.lines()[0].id.as_str());
    }

    #[test]
    fn a_reused_view_redoes_reachability_and_offsets() {
        let topologies: Vec<(char, Arc<Topology>)> = ['a', 'b', 'c', 'd']
            .into_iter()
            .map(|c| (c, Arc::new(Topology::parse(&nodes_text(c)).unwrap())))
            .collect();
        let round = |offset: u64, down: Option<char>| -> BTreeMap<String, NodeObservation> {
            topologies
                .iter()
                .map(|(c, t)| {
                    let mut o = observation(*c, offset, t);
                    if Some(*c) == down {
                        o.result = Err(PollFailure {
                            reason: FailureReason::Timeout,
                            message: "timeout".into(),
                            attempted: true,
                        });
                    }
                    (o.addr.clone(), o)
                })
                .collect()
        };
        let mut cache = ViewCache::default();
        for (offset, down) in [
            (1, None),
            (2, None),
            (3, Some('c')),
            (4, Some('c')),
            (5, None),
        ] {
            let obs = round(offset, down);
            let cached = derive_view_cached(&obs, &mut cache);
            assert_eq!(cached, derive_view(&obs), "round {offset}");
            let a = &cached.nodes[&id('a')];
            assert_eq!(a.repl_offset, Some(offset as i64));
            assert_eq!(cached.nodes[&id('c')].reachable, down.is_none());
            assert_eq!(
                cached.uncovered_slots,
                if down.is_some() { 5461 } else { 0 }
            );
            assert_eq!(cached.nodes[&id('c')].pfail_reporters.len(), 3);
        }
    }
}
