//! A minimal RESP2 client for the harness' own commands to nodes (bounded timeouts, no process
//! spawn), and test-side parsing of the replies it reads most: INFO-style `key:value` text and
//! CLUSTER NODES lines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Timeout for one internal command to a node (a SIGSTOPped node never answers).
pub(super) const CMD_TIMEOUT: Duration = Duration::from_secs(3);

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The text of a simple/bulk string reply, or the integer as text; arrays are joined by `\n`.
    pub fn text(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) => s.clone(),
            Resp::Int(i) => i.to_string(),
            Resp::Bulk(Some(s)) => s.clone(),
            Resp::Bulk(None) | Resp::Array(None) => String::new(),
            Resp::Array(Some(v)) => v.iter().map(|x| x.text()).collect::<Vec<_>>().join("\n"),
        }
    }
}

fn read_resp(r: &mut impl BufRead) -> Result<Resp, String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return Err("empty reply line".into());
    }
    let (t, rest) = line.split_at(1);
    match t {
        "+" => Ok(Resp::Simple(rest.to_string())),
        "-" => Ok(Resp::Error(rest.to_string())),
        ":" => rest
            .parse()
            .map(Resp::Int)
            .map_err(|e| format!("bad int {rest:?}: {e}")),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|e| format!("bad bulk len {rest:?}: {e}"))?;
            if len < 0 {
                return Ok(Resp::Bulk(None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf)
                .map_err(|e| format!("read bulk: {e}"))?;
            buf.truncate(len as usize);
            Ok(Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned())))
        }
        "*" => {
            let len: i64 = rest
                .parse()
                .map_err(|e| format!("bad array len {rest:?}: {e}"))?;
            if len < 0 {
                return Ok(Resp::Array(None));
            }
            let mut v = Vec::with_capacity(len as usize);
            for _ in 0..len {
                v.push(read_resp(r)?);
            }
            Ok(Resp::Array(Some(v)))
        }
        _ => Err(format!("unexpected reply line {line:?}")),
    }
}

/// One command as a RESP array of bulk strings.
pub(super) fn encode_cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command (after AUTH when a password is given) to 127.0.0.1:`port`.
/// `Ok` holds the reply, including `Resp::Error` replies; `Err` is a connection/timeout problem.
pub fn resp_command(
    port: u16,
    password: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> Result<Resp, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    if let Some(pw) = password {
        w.write_all(&encode_cmd(&["AUTH", pw]))
            .map_err(|e| format!("write {addr}: {e}"))?;
        if let Resp::Error(e) = read_resp(&mut r).map_err(|e| format!("{addr}: {e}"))? {
            return Err(format!("{addr}: AUTH failed: {e}"));
        }
    }
    w.write_all(&encode_cmd(args))
        .map_err(|e| format!("write {addr}: {e}"))?;
    let reply = read_resp(&mut r).map_err(|e| format!("{addr} {args:?}: {e}"))?;
    let _ = w.shutdown(Shutdown::Both);
    Ok(reply)
}

/// Parses `key:value` lines (INFO, CLUSTER INFO) into a map; `#` lines are skipped.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One line of CLUSTER NODES, split into its fields (test-side parsing only).
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    /// `host:port` without `@cport` and `,hostname`.
    pub host_port: String,
    pub flags: Vec<String>,
    pub master: String,
    pub link: String,
    pub slots: Vec<String>,
}

/// The CLUSTER NODES lines of `text` (lines with fewer than 8 fields are skipped).
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 8 {
                return None;
            }
            let host_port = f[1].split(['@', ',']).next().unwrap_or("").to_string();
            Some(NodeLine {
                id: f[0].to_string(),
                addr: f[1].to_string(),
                host_port,
                flags: f[2].split(',').map(str::to_string).collect(),
                master: f[3].to_string(),
                link: f[7].to_string(),
                slots: f[8..].iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect()
}
