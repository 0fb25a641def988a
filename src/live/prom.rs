//! A small client for the Prometheus HTTP API (`/api/v1/query` and `/api/v1/query_range`), blocking (ureq):
//! each input is one query evaluated as of an instant, or over a range of instants at a fixed step (the range
//! API evaluates the expression at each step exactly as an instant query at that time would).
//!
//! With every value comes the time of the newest sample behind it (`timestamp(QUERY)`), so that staleness is
//! judged on the data, not on the evaluation time (for an expression over functions such as `rate`, that is
//! the evaluation time; such an expression goes missing once its samples leave Prometheus' look-back window).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// Why a query gave no usable value.
#[derive(Clone, Debug, PartialEq)]
pub enum FetchError {
    /// Prometheus could not be reached (connection refused, timeout).
    Unreachable(String),
    /// Prometheus answered with an error (HTTP status, `status: error`, a bad query, an unreadable body).
    Error(String),
    /// The query returned several series: it must be aggregated to one.
    Ambiguous(usize),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable(m) => write!(f, "Prometheus unreachable: {m}"),
            FetchError::Error(m) => write!(f, "Prometheus error: {m}"),
            FetchError::Ambiguous(n) => {
                write!(f, "the query returned {n} series, expected one (aggregate it, e.g. sum(...) or max(...))")
            }
        }
    }
}

/// A value and the time of its newest sample, Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The value (not yet checked: may be NaN or negative).
    pub value: f64,
    /// When the newest sample behind it was taken.
    pub sample_unix_s: f64,
}

/// Largest number of points Prometheus returns per series and range query (its limit is 11,000).
pub const RANGE_CHUNK_POINTS: usize = 10_000;

/// The client.
pub struct Prometheus {
    base: String,
    agent: ureq::Agent,
}

/// A time as the API takes it: seconds with millisecond precision.
fn api_time(t: f64) -> String {
    format!("{t:.3}")
}

impl Prometheus {
    /// A client for the server at `base_url` (`http://host:port`), each request limited to `timeout_s`.
    pub fn new(base_url: &str, timeout_s: f64) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(timeout_s)))
            .http_status_as_error(false)
            .build()
            .into();
        Prometheus { base: base_url.trim_end_matches('/').to_string(), agent }
    }

    /// One GET of the API; the `data` object of a successful answer.
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, FetchError> {
        let mut req = self.agent.get(format!("{}/api/v1/{path}", self.base));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let json: Value = serde_json::from_str(&body).map_err(|_| {
            FetchError::Error(format!("HTTP {status}: {}", prescale_sim::input::clip(body.trim(), 120)))
        })?;
        if json["status"] != "success" {
            let kind = json["errorType"].as_str().unwrap_or("error");
            let msg = json["error"].as_str().unwrap_or("no message");
            return Err(FetchError::Error(format!("HTTP {status}: {kind}: {msg}")));
        }
        Ok(json["data"].clone())
    }

    /// `query` as of `t_unix_s`: `None` if it returned no series.
    pub fn instant(&self, query: &str, t_unix_s: f64) -> Result<Option<Sample>, FetchError> {
        let t = api_time(t_unix_s);
        let value = one_value(&self.get("query", &[("query", query), ("time", &t)])?)?;
        let Some((_, v)) = value else { return Ok(None) };
        let stamp = one_value(&self.get("query", &[("query", &format!("timestamp({query})")), ("time", &t)])?)?;
        Ok(Some(Sample { value: v, sample_unix_s: stamp.map_or(t_unix_s, |(_, s)| s) }))
    }

    /// `query` at `start, start + step, …, end` (Unix seconds): the instants that have a value, each with
    /// its sample. Asked in chunks of [`RANGE_CHUNK_POINTS`].
    pub fn range(&self, query: &str, start: f64, end: f64, step_s: f64) -> Result<BTreeMap<i64, Sample>, FetchError> {
        let mut out = BTreeMap::new();
        if end < start {
            return Ok(out);
        }
        let n = ((end - start) / step_s).round() as usize + 1;
        let mut k = 0;
        while k < n {
            let m = (n - k).min(RANGE_CHUNK_POINTS);
            let (a, b) = (start + k as f64 * step_s, start + (k + m - 1) as f64 * step_s);
            let params = |q: String| {
                [
                    ("query".to_string(), q),
                    ("start".into(), api_time(a)),
                    ("end".into(), api_time(b)),
                    ("step".into(), api_time(step_s)),
                ]
            };
            let get = |q: String| {
                let p = params(q);
                let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                self.get("query_range", &refs)
            };
            let values = series_points(&get(query.to_string())?)?;
            let stamps = series_points(&get(format!("timestamp({query})"))?)?;
            for (t, v) in values {
                let s = stamps.get(&t).copied().unwrap_or(t as f64 / 1e3);
                out.insert(t, Sample { value: v, sample_unix_s: s });
            }
            k += m;
        }
        Ok(out)
    }

    /// Whether the server answers its readiness endpoint.
    pub fn ready(&self) -> bool {
        self.agent.get(format!("{}/-/ready", self.base)).call().is_ok_and(|r| r.status().as_u16() == 200)
    }
}

/// Milliseconds of a Unix time (the key of range results).
pub fn millis(t_unix_s: f64) -> i64 {
    (t_unix_s * 1e3).round() as i64
}

/// A number as the API writes it: a string (`"1.5"`, `"NaN"`, `"+Inf"`).
fn number(v: &Value) -> Result<f64, FetchError> {
    let s = v.as_str().ok_or_else(|| FetchError::Error(format!("expected a number as a string, got {v}")))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| FetchError::Error(format!("expected a number, got '{s}'"))),
    }
}

fn point(p: &Value) -> Result<(f64, f64), FetchError> {
    let t = p[0].as_f64().ok_or_else(|| FetchError::Error(format!("expected [time, value], got {p}")))?;
    Ok((t, number(&p[1])?))
}

/// The one value of an instant query's `data` (a vector of at most one series, or a scalar).
fn one_value(data: &Value) -> Result<Option<(f64, f64)>, FetchError> {
    match data["resultType"].as_str() {
        Some("scalar") => Ok(Some(point(&data["result"])?)),
        Some("vector") => {
            let r = data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            match r {
                [] => Ok(None),
                [one] => Ok(Some(point(&one["value"])?)),
                many => Err(FetchError::Ambiguous(many.len())),
            }
        }
        other => Err(FetchError::Error(format!("unexpected result type {other:?} for an instant query"))),
    }
}

/// The points of a range query's `data` (a matrix of at most one series), by time in milliseconds.
fn series_points(data: &Value) -> Result<BTreeMap<i64, f64>, FetchError> {
    let r = data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    match r {
        [] => Ok(BTreeMap::new()),
        [one] => {
            let mut out = BTreeMap::new();
            for p in one["values"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let (t, v) = point(p)?;
                out.insert(millis(t), v);
            }
            Ok(out)
        }
        many => Err(FetchError::Ambiguous(many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_read_as_the_api_writes_them() {
        let v = json!({"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.5, "12.25"]}]});
        assert_eq!(one_value(&v).unwrap(), Some((1700000000.5, 12.25)));
        let nan = json!({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "NaN"]}]});
        assert!(one_value(&nan).unwrap().unwrap().1.is_nan());
        assert_eq!(one_value(&json!({"resultType": "vector", "result": []})).unwrap(), None);
        let two = json!({"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]});
        assert_eq!(one_value(&two), Err(FetchError::Ambiguous(2)));
        let scalar = json!({"resultType": "scalar", "result": [5.0, "3"]});
        assert_eq!(one_value(&scalar).unwrap(), Some((5.0, 3.0)));
        let m = json!({"resultType": "matrix", "result": [{"values": [[10, "1"], [70, "2.5"]]}]});
        assert_eq!(series_points(&m).unwrap(), BTreeMap::from([(10_000, 1.0), (70_000, 2.5)]));
    }

    /// A port nothing listens on answers "unreachable", never a value.
    #[test]
    fn an_unreachable_server_is_an_error_of_its_own_kind() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let p = Prometheus::new(&format!("http://127.0.0.1:{port}"), 1.0);
        assert!(matches!(p.instant("up", 0.0), Err(FetchError::Unreachable(_))));
        assert!(!p.ready());
    }
}
