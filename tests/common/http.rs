//! A raw HTTP/1.1 GET client over TcpStream (status, lowercased headers, de-chunked body), used
//! against the exporter, Prometheus, Alertmanager and the peer exporter.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// GET `url` (`http://host:port/path`). Returns (status, headers as `name: value\n` lines with
/// lowercased names, body with chunked transfer-encoding removed). Panics on I/O errors.
pub fn http_get(url: &str) -> (u16, String, String) {
    http_get_with_headers(url, &[])
}

/// `http_get` with extra request headers.
pub fn http_get_with_headers(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    try_http_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `http_get_with_headers` that returns transport and protocol errors instead of panicking.
pub fn try_http_get(url: &str, headers: &[(&str, &str)]) -> Result<(u16, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(k) => (&rest[..k], &rest[k..]),
        None => (rest, "/"),
    };
    let timeout = Duration::from_secs(5);
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("resolve {hostport}: {e}"))?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| format!("no address for {hostport}"))?;
    let mut s =
        TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse_http_response(&raw)
}

fn parse_http_response(raw: &[u8]) -> Result<(u16, String, String), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut body = raw[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = String::new();
    let mut chunked = false;
    let mut content_length: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                content_length = v.parse().ok();
            }
            headers.push_str(&format!("{k}: {v}\n"));
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(n) = content_length {
        body.truncate(n);
    }
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body: missing chunk size line")?;
        let size_line = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("chunked body: bad size {size_hex:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(format!(
                "chunked body truncated: want {size}, have {}",
                data.len()
            ));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size..];
        if data.starts_with(b"\r\n") {
            data = &data[2..];
        }
    }
}

/// Value of header `name` (case-insensitive) from the headers string of `http_get`.
pub fn header_value(headers: &str, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    headers
        .lines()
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
