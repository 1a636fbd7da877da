//! The steady writer: about 200 SETs a second across the cluster, following MOVED redirects,
//! moving on to another node when one does not answer. It only counts what happened.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pause between writes.
const PACE: Duration = Duration::from_millis(5);
const IO_TIMEOUT: Duration = Duration::from_millis(300);

/// Counters of the writer.
#[derive(Default)]
pub struct WriteStats {
    /// `+OK` replies.
    pub acked: AtomicU64,
    /// MOVED/ASK replies followed.
    pub redirected: AtomicU64,
    /// Errors, timeouts and refused connections.
    pub failed: AtomicU64,
}

/// The running writer.
pub struct Writer {
    stop: Arc<AtomicBool>,
    /// What it did so far.
    pub stats: Arc<WriteStats>,
    handle: Option<JoinHandle<()>>,
}

struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

fn connect(port: u16) -> Option<Conn> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok()?;
    s.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    Some(Conn {
        w: s.try_clone().ok()?,
        r: BufReader::new(s),
    })
}

/// One SET; the reply's first line.
fn set(c: &mut Conn, key: &str) -> Option<String> {
    let cmd = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$16\r\nchaos-writer-val\r\n",
        key.len()
    );
    c.w.write_all(cmd.as_bytes()).ok()?;
    let mut line = String::new();
    c.r.read_line(&mut line).ok()?;
    (!line.is_empty()).then(|| line.trim_end().to_string())
}

/// The cluster hash slot of a key without hash tags (CRC16/XMODEM modulo 16384).
fn slot_of(key: &str) -> u16 {
    let mut crc: u16 = 0;
    for b in key.bytes() {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// The port of a `-MOVED slot host:port` or `-ASK slot host:port` reply.
fn redirect_port(reply: &str) -> Option<u16> {
    let rest = reply
        .strip_prefix("-MOVED ")
        .or_else(|| reply.strip_prefix("-ASK "))?;
    rest.rsplit_once(':')?.1.parse().ok()
}

impl Writer {
    /// Starts writing; `ports` is the shared list of node ports it may start from.
    pub fn start(ports: Arc<Mutex<Vec<u16>>>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriteStats::default());
        let (st, sx) = (stop.clone(), stats.clone());
        let handle = std::thread::spawn(move || {
            let mut conns: HashMap<u16, Conn> = HashMap::new();
            // Slot owners learned from MOVED replies.
            let mut owner: HashMap<u16, u16> = HashMap::new();
            let mut n = 0u64;
            while !st.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("chaos:{n}");
                let slot = slot_of(&key);
                let list = ports.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let p = owner.get(&slot).copied().unwrap_or_else(|| {
                    list.get((n as usize) % list.len().max(1))
                        .copied()
                        .unwrap_or(0)
                });
                let reply = conns
                    .remove(&p)
                    .or_else(|| connect(p))
                    .and_then(|mut c| set(&mut c, &key).map(|r| (c, r)));
                match reply {
                    Some((c, r)) => {
                        conns.insert(p, c);
                        if r.starts_with("+OK") {
                            sx.acked.fetch_add(1, Ordering::Relaxed);
                        } else if let Some(to) = redirect_port(&r) {
                            sx.redirected.fetch_add(1, Ordering::Relaxed);
                            if r.starts_with("-MOVED") {
                                owner.insert(slot, to);
                            }
                        } else {
                            sx.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        sx.failed.fetch_add(1, Ordering::Relaxed);
                        owner.remove(&slot);
                    }
                }
                std::thread::sleep(PACE);
            }
        });
        Writer {
            stop,
            stats,
            handle: Some(handle),
        }
    }

    /// Stops the writer.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}
