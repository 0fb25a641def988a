//! Writing a run's results: `results/<scenario>/<run-id>/` with the resolved scenario (`scenario.ron`), the
//! per-step metrics (`timeseries.csv`) and the summary (`summary.json`), all or nothing: files are written
//! into a hidden temporary folder beside the target, which is renamed into place only when complete. An
//! interrupted run leaves at most a `.tmp-…` folder, never a half folder that looks finished. The last file
//! written is `complete.json`, the size and SHA-256 of every other file, so that a folder damaged later (a file
//! deleted, truncated or edited) is told from a finished one ([`verify_complete`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use prescale_sim::scenario::RunOutput;

use crate::scenario_io::Prepared;
use serde::Serialize;
use serde_json::{Value, json};

/// prescale's version and the git revision it was built from.
pub fn build_info() -> (String, String) {
    (env!("CARGO_PKG_VERSION").to_string(), env!("PRESCALE_GIT_REVISION").to_string())
}

/// `YYYYMMDDTHHMMSSZ` for a unix time.
pub fn utc_stamp(unix_s: u64) -> String {
    let (days, secs) = ((unix_s / 86400) as i64, unix_s % 86400);
    let (y, m, d) = prescale_sim::trace::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Renders rows of a serialisable struct as CSV (header from the field names; NaN as an empty cell), with the
/// one CSV writer ([`prescale_sim::table::write_rows`]).
pub fn to_csv<T: Serialize + Sync>(rows: &[T]) -> String {
    // Structs (every table prescale writes) directly, much faster; anything else through JSON values.
    if let Some(text) = crate::csv_rows::structs_to_csv(rows) {
        return text;
    }
    to_csv_via_json(rows)
}

/// [`to_csv`] through each row's JSON value (the definition of a cell's text; the route for rows that are not
/// structs).
pub(crate) fn to_csv_via_json<T: Serialize>(rows: &[T]) -> String {
    let mut header: Vec<String> = Vec::new();
    let mut lines = Vec::with_capacity(rows.len());
    for r in rows {
        let Value::Object(map) = serde_json::to_value(r).expect("rows serialise") else { continue };
        if header.is_empty() {
            header = map.keys().cloned().collect();
        }
        lines.push(map.values().map(cell_text).collect());
    }
    if header.is_empty() {
        return String::new();
    }
    prescale_sim::table::write_rows(&header, lines)
}

/// A JSON value as a CSV cell: null (NaN) is empty, a string is itself, anything else its JSON text.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so that a reader never
/// sees half a file.
pub fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"), std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Opens (creating, never truncating) the lock file `path`: the one opener of the sweep's, the shards' and the
/// models' locks (`flock`-style, held for as long as the handle lives).
pub(crate) fn open_lock(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

/// Writes one run's results under `root/<scenario>/<seed and time>/` and returns that folder.
pub fn write_run(root: &Path, prepared: &Prepared, out: &RunOutput, seed: u64, wall_s: f64) -> Result<PathBuf> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let scenario_dir = root.join(&prepared.config.name);
    let base = format!("seed{seed}-{}", utc_stamp(now));
    let mut id = base.clone();
    let mut n = 2;
    while scenario_dir.join(&id).exists() {
        id = format!("{base}-{n}");
        n += 1;
    }
    let dest = scenario_dir.join(&id);
    write_run_to(&dest, prepared, out, seed, wall_s, serde_json::Value::Null)?;
    Ok(dest)
}

/// Writes one run's results into exactly `dest` (which must not exist): `scenario.ron`, `timeseries.csv`,
/// `summary.json` (with `extra` under `"cell"` when not null) go into a hidden temporary sibling folder that
/// is renamed to `dest` only once complete.
pub fn write_run_to(
    dest: &Path,
    prepared: &Prepared,
    out: &RunOutput,
    seed: u64,
    wall_s: f64,
    extra: serde_json::Value,
) -> Result<()> {
    // A failed run, or a number that is not one, is an error of the run, never a blank cell in the results.
    if let Some(why) = &out.fault {
        anyhow::bail!("scenario {} (seed {seed}): the run failed: {why}; nothing was written", prepared.config.name);
    }
    if let Some(what) = out.first_non_finite() {
        anyhow::bail!(
            "scenario {} (seed {seed}): the run produced a non-finite value: {what}; nothing was written",
            prepared.config.name
        );
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    let tmp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let p = tmp.join(name);
        let mut f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        // No fsync: the folder appears by one rename, so a crash leaves no partial folder, and the completion
        // record's SHA-256s catch what a power loss could damage (a resumed sweep reruns such a folder); an
        // fsync per file cost a 28-day run more than its simulation.
        f.write_all(text.as_bytes()).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    };
    let result = (|| -> Result<()> {
        let pretty = ron::ser::PrettyConfig::default().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        );
        let ron = ron::ser::to_string_pretty(&prepared.config, pretty).context("serialising the scenario")?;
        let timeseries = to_csv(&out.rows);
        let (version, revision) = build_info();
        let mut summary = json!({
            "prescale_version": version,
            "git_revision": revision,
            "scenario": prepared.config.name,
            "seed": seed,
            "wall_time_s": wall_s,
            "finished_utc": utc_stamp(now),
            "summary": out.summary,
            "trace": prepared.trace_report,
        });
        if !extra.is_null() {
            summary["cell"] = extra;
        }
        let summary = serde_json::to_string_pretty(&summary)?;
        let files = [("scenario.ron", ron.as_str()), ("timeseries.csv", &timeseries), ("summary.json", &summary)];
        for (name, text) in files {
            write(name, text)?;
        }
        // Written last: what a finished folder holds, so that a later reader can tell it is whole.
        write(COMPLETE_FILE, &completion_record(&files)?)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    Ok(())
}

/// The completion record of a results folder: written last, it lists every file with its size and SHA-256.
pub const COMPLETE_FILE: &str = "complete.json";

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The completion record of `files` (`(name, text)` as written; JSON: `{"files": {name: {"bytes": n,
/// "sha256": hex}}}`).
fn completion_record(files: &[(&str, &str)]) -> Result<String> {
    let mut listed = serde_json::Map::new();
    for (name, text) in files {
        listed.insert(name.to_string(), json!({"bytes": text.len(), "sha256": sha256_hex(text.as_bytes())}));
    }
    Ok(serde_json::to_string_pretty(&json!({ "files": listed }))?)
}

/// Checks a finished results folder against its completion record.
///
/// # Errors
/// What is wrong, in words: the record missing or unreadable, or a listed file missing, of another size or
/// with other contents than when it was written.
pub fn verify_complete(dir: &Path) -> std::result::Result<(), String> {
    let record = dir.join(COMPLETE_FILE);
    let text = std::fs::read_to_string(&record).map_err(|e| format!("{COMPLETE_FILE} unreadable ({e})"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{COMPLETE_FILE} is not valid JSON ({e})"))?;
    let files = v.get("files").and_then(Value::as_object).ok_or(format!("{COMPLETE_FILE} lists no files"))?;
    if files.is_empty() {
        return Err(format!("{COMPLETE_FILE} lists no files"));
    }
    for (name, want) in files {
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!("{COMPLETE_FILE} lists a file outside the folder: '{name}'"));
        }
        let bytes = std::fs::read(dir.join(name)).map_err(|_| format!("{name} is missing"))?;
        if want.get("bytes").and_then(Value::as_u64) != Some(bytes.len() as u64) {
            return Err(format!("{name} has {} bytes, {} when written", bytes.len(), want["bytes"]));
        }
        if want.get("sha256").and_then(Value::as_str) != Some(sha256_hex(&bytes).as_str()) {
            return Err(format!("{name} differs from what was written (SHA-256)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_csv() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(804571200), "19950701T040000Z");
        #[derive(Serialize)]
        struct R {
            a: f64,
            b: u32,
        }
        assert_eq!(to_csv(&[R { a: 0.5, b: 1 }, R { a: f64::NAN, b: 2 }]), "a,b\n0.5,1\n,2\n");
    }
}
