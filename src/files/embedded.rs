//! Inputs embedded in the binary (the demo's training files, experiments, scenarios and trace), so that the
//! demo and the benchmarks run without a source tree.

use std::path::Path;

use anyhow::Result;

/// The demo's inputs, embedded: `(path below the inputs folder, text)`. Written out as they lie in the
/// repository, so relative paths between them hold and the binary needs no source tree.
pub const INPUTS: [(&str, &str); 12] = [
    ("training/gru-elb.ron", include_str!("../../training/gru-elb.ron")),
    ("training/bc-flash-crowd.ron", include_str!("../../training/bc-flash-crowd.ron")),
    ("training/bc-flash-crowd-no-dagger.ron", include_str!("../../training/bc-flash-crowd-no-dagger.ron")),
    ("training/bc-elb.ron", include_str!("../../training/bc-elb.ron")),
    ("training/bc-elb-no-dagger.ron", include_str!("../../training/bc-elb-no-dagger.ron")),
    ("training/flash-crowd-history.ron", include_str!("../../training/flash-crowd-history.ron")),
    ("experiments/demo-flash-crowd.ron", include_str!("../../experiments/demo-flash-crowd.ron")),
    ("experiments/demo-elb.ron", include_str!("../../experiments/demo-elb.ron")),
    ("scenarios/flash-crowd.ron", include_str!("../../scenarios/flash-crowd.ron")),
    ("scenarios/nab-elb-replay.ron", include_str!("../../scenarios/nab-elb-replay.ron")),
    ("scenarios/nab-elb-test.ron", include_str!("../../scenarios/nab-elb-test.ron")),
    (
        "scenarios/traces/nab_elb_request_count_8c0756.csv",
        include_str!("../../scenarios/traces/nab_elb_request_count_8c0756.csv"),
    ),
];

/// Writes every embedded input below `dir` as it lies in the repository (so relative paths between them hold),
/// each text passed through `transform` first; a file that already holds the text is left alone.
///
/// # Errors
/// I/O.
pub fn write_inputs(dir: &Path, transform: impl Fn(&str) -> String) -> Result<()> {
    for (rel, text) in INPUTS {
        let text = transform(text);
        let file = dir.join(rel);
        std::fs::create_dir_all(file.parent().expect("a file in a folder"))?;
        if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            crate::files::results::write_atomically(&file, &text)?;
        }
    }
    Ok(())
}
