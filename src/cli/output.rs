//! Printing results as the peers do (REFERENCE_MODEL §5): aligned `key: value` lines for people, then one
//! `RESULT {json}` line for programs.

use serde::Serialize;
use serde_json::Value;

/// Renders `result` (a struct whose fields are the metrics, in order) as `key: value` lines followed by the
/// `RESULT` line.
pub fn key_value_and_result<T: Serialize>(result: &T) -> String {
    let value = serde_json::to_value(result).expect("results serialise");
    let mut out = String::new();
    if let Value::Object(map) = &value {
        let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in map {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("{k:>width$}: {shown}\n"));
        }
    }
    out.push_str("RESULT ");
    out.push_str(&value.to_string());
    out.push('\n');
    out
}

/// Adds `key: value` to a serialisable result, at the end.
pub fn with_field<T: Serialize>(result: &T, key: &str, value: Value) -> Value {
    let mut v = serde_json::to_value(result).expect("results serialise");
    if let Value::Object(map) = &mut v {
        map.insert(key.to_string(), value);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct R {
        scenario: &'static str,
        instance_seconds: f64,
        mean_wait: f64,
        served: u64,
    }

    #[test]
    fn formats_like_the_peers() {
        let s = key_value_and_result(&R {
            scenario: "autoscale-sine",
            instance_seconds: 299520.0,
            mean_wait: 4.281711370921784e-6,
            served: 7,
        });
        assert_eq!(
            s,
            "        scenario: autoscale-sine\ninstance_seconds: 299520.0\n       mean_wait: 4.281711370921784e-6\n          served: 7\n\
             RESULT {\"scenario\":\"autoscale-sine\",\"instance_seconds\":299520.0,\"mean_wait\":4.281711370921784e-6,\"served\":7}\n"
        );
    }
}
