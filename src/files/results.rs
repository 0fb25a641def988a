//! Writing a run's results: `results/<scenario>/<run-id>/` with the resolved scenario (`scenario.ron`), the
//! per-step metrics (`timeseries.csv`) and the summary (`summary.json`), all or nothing: files are written
//! into a hidden temporary folder beside the target, which is renamed into place only when complete. An
//! interrupted run leaves at most a `.tmp-…` folder, never a half folder that looks finished. The last file
//! written is `complete.json`, the size and SHA-256 of every other file, so that a folder damaged later (a file
//! deleted, truncated or edited) is told from a finished one ([`verify_complete`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use prescale_sim::scenario::RunOutput;

use crate::files::csv_rows::cell_text;
use crate::files::scenario_io::Prepared;
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
    if let Some(text) = crate::files::csv_rows::structs_to_csv(rows) {
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
/// models' locks (`flock`-style, held for as long as the handle lives). A results root may be shared scratch
/// where another user can plant files: a symbolic link in the lock's place is refused, never followed (its
/// target is not touched), and so is anything but a regular file.
pub(crate) fn open_lock(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let f = match opened {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("the lock file {} is a symbolic link; refusing to follow it (remove it and retry)", path.display())
        }
        r => r.with_context(|| format!("opening the lock file {}", path.display()))?,
    };
    let kind = f.metadata().with_context(|| format!("reading the lock file {}", path.display()))?.file_type();
    if !kind.is_file() {
        bail!("the lock file {} is not a regular file; refusing to use it (remove it and retry)", path.display());
    }
    Ok(f)
}

/// The folder `root/<scenario>/seed<seed>-<UTC time>[-n]/` for a run of `scenario` (the first such name not
/// taken).
fn new_run_dir(root: &Path, scenario: &str, seed: u64) -> PathBuf {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let scenario_dir = root.join(scenario);
    let base = format!("seed{seed}-{}", utc_stamp(now));
    let mut id = base.clone();
    let mut n = 2;
    while scenario_dir.join(&id).exists() {
        id = format!("{base}-{n}");
        n += 1;
    }
    scenario_dir.join(&id)
}

/// Writes one run's results under `root/<scenario>/<seed and time>/` and returns that folder.
pub fn write_run(root: &Path, prepared: &Prepared, out: &RunOutput, seed: u64, wall_s: f64) -> Result<PathBuf> {
    let dest = new_run_dir(root, &prepared.config.name, seed);
    write_run_to(&dest, prepared, out, seed, wall_s, serde_json::Value::Null)?;
    Ok(dest)
}

/// Runs `prepared` and writes its results under `root/<scenario>/<seed and time>/` (named when the run
/// starts), formatting and storing the per-step table on another thread while the simulation goes on
/// ([`prescale_sim::scenario::run_streamed`]): the folder is the one [`write_run`] writes, byte for byte, and
/// appears whole or not at all. Returns the folder, the output and the simulation's wall time (s).
///
/// # Errors
/// As [`write_run_to`]: a failed run or a non-finite number writes nothing.
pub fn run_and_write(
    root: &Path,
    prepared: &Prepared,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<(PathBuf, RunOutput, f64)> {
    let dest = new_run_dir(root, &prepared.config.name, seed);
    let folder = TempFolder::create(&dest)?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<prescale_sim::scenario::MetricsRow>>();
    let path = folder.path.join("timeseries.csv");
    let writer = std::thread::spawn(move || stream_csv(&path, rx));
    let t0 = std::time::Instant::now();
    // A send fails only once the writer has stopped on an error, which joining it reports.
    let out = prescale_sim::scenario::run_streamed(prepared, seed, progress, &mut |rows| {
        let _ = tx.send(rows.to_vec());
    });
    let wall_s = t0.elapsed().as_secs_f64();
    drop(tx);
    let timeseries = writer.join().map_err(|_| anyhow::anyhow!("the timeseries.csv writer panicked"))??;
    check_run(prepared, &out, seed)?;
    folder.finish(prepared, &out, seed, wall_s, serde_json::Value::Null, Timeseries::Written(timeseries))?;
    Ok((dest, out, wall_s))
}

/// Writes rows as they come into `path` as CSV (the text [`to_csv`] makes of them all); returns its size and
/// SHA-256.
fn stream_csv(
    path: &Path,
    rows: std::sync::mpsc::Receiver<Vec<prescale_sim::scenario::MetricsRow>>,
) -> Result<Written> {
    use sha2::Digest;
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut hash = sha2::Sha256::new();
    let mut bytes = 0;
    // One buffer for every batch (a batch is 1 % of the run: one write each), so the writer makes no new
    // pages while the simulation runs beside it.
    let mut text = Vec::new();
    for batch in rows {
        let Some(first) = batch.first() else { continue };
        if bytes == 0 {
            text = crate::files::csv_rows::header(first).expect("metrics rows are structs");
        }
        crate::files::csv_rows::records_into(&mut text, &batch).expect("metrics rows are structs");
        hash.update(&text);
        bytes += text.len();
        file.write_all(&text).with_context(|| format!("writing {}", path.display()))?;
        text.clear();
    }
    Ok(Written { bytes, sha256: hex(&hash.finalize()) })
}

/// A file already written: its size and SHA-256 (lowercase hex).
struct Written {
    bytes: usize,
    sha256: String,
}

/// `timeseries.csv`: its text, or written already.
enum Timeseries {
    Text(String),
    Written(Written),
}

/// A hidden temporary sibling of a results folder, renamed into place by [`TempFolder::finish`] and removed
/// if it is dropped unfinished (an error, a panic), with the folders above it that it created if they are
/// still empty.
struct TempFolder {
    path: PathBuf,
    dest: PathBuf,
    /// The folders above it that did not exist, nearest first.
    created: Vec<PathBuf>,
    done: bool,
}

impl TempFolder {
    fn create(dest: &Path) -> Result<TempFolder> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let created: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("run");
        let path = parent.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempFolder { path, dest: dest.to_path_buf(), created, done: false })
    }

    fn write(&self, name: &str, text: &str) -> Result<()> {
        let p = self.path.join(name);
        let mut f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        // No fsync: the folder appears by one rename, so a crash leaves no partial folder, and the completion
        // record's SHA-256s catch what a power loss could damage (a resumed sweep reruns such a folder); an
        // fsync per file cost a 28-day run more than its simulation.
        f.write_all(text.as_bytes()).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    /// Writes the files but the time series (its text, or already written) and the completion record, and
    /// renames the folder into place.
    fn finish(
        mut self,
        prepared: &Prepared,
        out: &RunOutput,
        seed: u64,
        wall_s: f64,
        extra: serde_json::Value,
        timeseries: Timeseries,
    ) -> Result<()> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let pretty = ron::ser::PrettyConfig::default().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        );
        let ron = ron::ser::to_string_pretty(&prepared.config, pretty).context("serialising the scenario")?;
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
        let timeseries = match timeseries {
            Timeseries::Text(text) => {
                self.write("timeseries.csv", &text)?;
                Written { bytes: text.len(), sha256: sha256_hex(text.as_bytes()) }
            }
            Timeseries::Written(w) => w,
        };
        let mut listed = vec![("scenario.ron", written(&ron)), ("timeseries.csv", timeseries)];
        listed.push(("summary.json", written(&summary)));
        for (name, text) in [("scenario.ron", &ron), ("summary.json", &summary)] {
            self.write(name, text)?;
        }
        // Written last: what a finished folder holds, so that a later reader can tell it is whole.
        self.write(COMPLETE_FILE, &completion_record(&listed)?)?;
        std::fs::rename(&self.path, &self.dest)
            .with_context(|| format!("renaming {} to {}", self.path.display(), self.dest.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
            // Only empty ones: another run may have written beside this one meanwhile.
            for dir in &self.created {
                if std::fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
    }
}

fn written(text: &str) -> Written {
    Written { bytes: text.len(), sha256: sha256_hex(text.as_bytes()) }
}

/// Writes one run's results into exactly `dest` (which must not exist): `scenario.ron`, `timeseries.csv`,
/// `summary.json` (with `extra` under `"cell"` when not null) go into a hidden temporary sibling folder that
/// is renamed to `dest` only once complete.
///
/// # Errors
/// A failed run or a non-finite number (nothing is written), or I/O.
pub fn write_run_to(
    dest: &Path,
    prepared: &Prepared,
    out: &RunOutput,
    seed: u64,
    wall_s: f64,
    extra: serde_json::Value,
) -> Result<()> {
    check_run(prepared, out, seed)?;
    let folder = TempFolder::create(dest)?;
    folder.finish(prepared, out, seed, wall_s, extra, Timeseries::Text(to_csv(&out.rows)))
}

/// A failed run, or a number that is not one, is an error of the run, never a blank cell in the results.
fn check_run(prepared: &Prepared, out: &RunOutput, seed: u64) -> Result<()> {
    if let Some(why) = &out.fault {
        anyhow::bail!("scenario {} (seed {seed}): the run failed: {why}; nothing was written", prepared.config.name);
    }
    if let Some(what) = out.first_non_finite() {
        anyhow::bail!(
            "scenario {} (seed {seed}): the run produced a non-finite value: {what}; nothing was written",
            prepared.config.name
        );
    }
    Ok(())
}

/// The completion record of a results folder: written last, it lists every file with its size and SHA-256.
pub const COMPLETE_FILE: &str = "complete.json";

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The completion record of `files` (name, size and SHA-256, as written; JSON: `{"files": {name: {"bytes": n,
/// "sha256": hex}}}`).
fn completion_record(files: &[(&str, Written)]) -> Result<String> {
    let mut listed = serde_json::Map::new();
    for (name, w) in files {
        listed.insert(name.to_string(), json!({"bytes": w.bytes, "sha256": w.sha256}));
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

    /// The flash-crowd scenario as shipped, with `edit` applied.
    fn flash_crowd(edit: impl Fn(String) -> String) -> crate::files::scenario_io::Loaded {
        let text = edit(include_str!("../../scenarios/flash-crowd.ron").to_string());
        crate::files::scenario_io::load_scenario_text(Path::new("flash-crowd.ron"), &text).expect("a valid scenario")
    }

    /// A run written while it goes on ([`run_and_write`]: the table streamed from a fluid run, or handed over
    /// at the end of a request-level run or one with a shadow) is the folder [`write_run`] writes of the same
    /// run, byte for byte but for the summary's wall time and clock; and a run that fails leaves nothing, not
    /// even the folders it made.
    #[test]
    fn a_streamed_run_writes_what_write_run_writes() {
        let d = tempfile::tempdir().unwrap();
        let shadow = |t: String| {
            t.replacen(
                "    controller:",
                "    shadow: ReferenceHpa(target_utilisation: 0.5, max_instances: 60),\n    controller:",
                1,
            )
        };
        let request_level =
            |t: String| t.replace("fidelity: Fluid", "fidelity: RequestLevel").replace("21600, //", "1800, //");
        for (what, loaded) in [
            ("fluid", flash_crowd(|t| t)),
            ("shadow", flash_crowd(shadow)),
            ("request level", flash_crowd(request_level)),
        ] {
            let p = loaded.prepare(3).unwrap();
            assert_eq!(p.config.shadow.is_some(), what == "shadow");
            assert_eq!(p.config.fidelity == prescale_sim::scenario::Fidelity::RequestLevel, what == "request level");
            let root = d.path().join(what.replace(' ', "-"));
            let (streamed, out, _) = run_and_write(&root, &p, 3, &mut |_| {}).unwrap();
            assert_eq!(out.rows.len(), p.demand.steps(), "{what}");
            // The output is the plain run's.
            let plain = prescale_sim::scenario::run(&p, 3, &mut |_| {});
            assert_eq!(to_csv(&out.rows), to_csv(&plain.rows), "{what}");
            assert_eq!(serde_json::to_value(&out.summary).unwrap(), serde_json::to_value(&plain.summary).unwrap());
            let whole = write_run(&d.path().join("whole"), &p, &plain, 3, 0.0).unwrap();
            for name in ["scenario.ron", "timeseries.csv"] {
                let (a, b) = (std::fs::read(streamed.join(name)).unwrap(), std::fs::read(whole.join(name)).unwrap());
                assert!(a == b, "{what}: {name} differs");
            }
            let record = |dir: &Path| -> Value {
                serde_json::from_str(&std::fs::read_to_string(dir.join(COMPLETE_FILE)).unwrap()).unwrap()
            };
            assert_eq!(record(&streamed)["files"]["timeseries.csv"], record(&whole)["files"]["timeseries.csv"]);
            assert_eq!(verify_complete(&streamed), Ok(()), "{what}");
            let names = |dir: &Path| {
                let mut n: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
                n.sort();
                n
            };
            assert_eq!(names(&streamed), names(&whole), "{what}: no temporary folder left, the same files");
            assert_eq!(std::fs::read_dir(streamed.parent().unwrap()).unwrap().count(), 1, "{what}");
        }
        // A run that fails (a non-finite price makes a non-finite cost) writes nothing, and removes the
        // folders it created for its results.
        let loaded = flash_crowd(|t| t.replace("price_usd_per_hour: 0.192", "price_usd_per_hour: 1e308"));
        let p = loaded.prepare(1).unwrap();
        let root = d.path().join("failing").join("deeper");
        let e = run_and_write(&root, &p, 1, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("non-finite") && e.contains("nothing was written"), "{e}");
        assert!(!d.path().join("failing").exists(), "{e}");
    }
}
