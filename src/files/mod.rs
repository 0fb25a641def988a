//! The files of the front end: scenario and experiment text in (`scenario_io`, `ron_paths`), a run's files out
//! (`results`, `csv_rows`), and the inputs embedded in the binary (`embedded`). The floor of the front end: it
//! imports nothing from the other rooms.

pub(crate) mod csv_rows;
pub mod embedded;
pub mod results;
pub mod ron_paths;
pub mod scenario_io;
