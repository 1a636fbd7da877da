//! Reading the Prometheus text exposition the exporter serves: samples of one metric with their
//! labels, one value by labels, and how many nodes are up.

use std::collections::BTreeMap;

fn parse_sample_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let mut chars = rest[1..].char_indices().peekable();
        let mut consumed = 1usize;
        loop {
            // skip separators/space
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some(&(k, '}')) => {
                    consumed += k + 1;
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            match chars.next() {
                Some((_, '"')) => {}
                _ => return None,
            }
            let mut val = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, other)) => val.push(other),
                        None => return None,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => val.push(c),
                }
            }
            if !closed {
                return None;
            }
            labels.insert(key.trim().to_string(), val);
        }
        rest = &rest[consumed..];
    }
    let value_tok = rest.split_whitespace().next()?;
    let value = match value_tok {
        "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" | "nan" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// All samples of metric `name` (exact sample name, e.g. `redis_up`, `x_total`, `h_bucket`).
pub fn metric_samples(body: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    body.lines()
        .filter_map(parse_sample_line)
        .filter(|(n, _, _)| n == name)
        .map(|(_, l, v)| (l, v))
        .collect()
}

/// How many nodes `/metrics` reports `redis_up 1` for.
pub fn up_count(body: &str) -> usize {
    metric_samples(body, "redis_up")
        .iter()
        .filter(|(_, v)| *v == 1.0)
        .count()
}

/// Value of the first sample named `name` whose labels include all of `labels`.
pub fn metric_value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(body, name)
        .into_iter()
        .find(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
}
