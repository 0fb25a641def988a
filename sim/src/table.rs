//! CSV tables: the one reader and the one writer of prescale, on the `csv` crate (RFC 4180: fields may be
//! quoted, a quoted field may hold commas, doubled quotes and line breaks).
//!
//! The reader ([`read_rows`]) hands the header and then each row, with the 1-based line where the row starts,
//! to the caller; fields are trimmed of surrounding spaces, blank lines (and rows of a single empty field,
//! which cannot be told from them) are skipped, a UTF-8 byte-order mark
//! at the start is dropped, and rows may have fewer or more fields than the header (the caller says what a
//! missing field means). The delimiter is the comma, unless the header line holds none and holds a tab or a
//! semicolon: then that ([`delimiter`]; the tab first), so that the tab-separated and semicolon-separated
//! exports of spreadsheets and databases read as they are. The writer ([`write_rows`]) quotes a field only when it must (a comma, a quote or a
//! line break in it) and ends every row with `\n`. One leniency beyond RFC 4180: a field quoted after a space
//! (`a, "b"`) is read as `b`, as the hand-written files of many tools expect.

/// A malformed CSV text, with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    /// 1-based line (0 when the whole text is concerned).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 { write!(f, "line {}: {}", self.line, self.message) } else { write!(f, "{}", self.message) }
    }
}

/// Reads `text` as CSV: calls `row(line, fields)` for each non-blank row, the header first, stopping at the
/// first error (the text's own, or one `row` returns). Returns the number of rows seen, header included.
///
/// # Errors
/// An empty text (no header), a row the CSV grammar refuses (named by its line), or the first error of `row`.
pub fn read_rows<E: From<TableError>>(
    text: &str,
    mut row: impl FnMut(usize, &[&str]) -> Result<(), E>,
) -> Result<usize, E> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut seen = 0;
    let bytes = text.as_bytes();
    let (mut line, mut counted) = (1usize, 0usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
                    _ => format!("not valid CSV: {e}"),
                };
                return Err(TableError { line, message }.into());
            }
        }
        // A row of one empty field is a blank line (the csv crate skips only truly empty ones).
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        // The line where the record's first character is (the csv crate's own line count can point at a
        // blank line before it): newlines counted up to the record's byte offset, past any line breaks there.
        let mut start = record.position().map_or(0, |p| p.byte() as usize).min(bytes.len());
        while start < bytes.len() && (bytes[start] == b'\n' || bytes[start] == b'\r') {
            start += 1;
        }
        line += bytes[counted..start].iter().filter(|&&b| b == b'\n').count();
        counted = start;
        let owned: Vec<std::borrow::Cow<'_, str>> = record.iter().map(unquote_spaced).collect();
        let fields: Vec<&str> = owned.iter().map(|f| f.as_ref()).collect();
        row(line, &fields)?;
        seen += 1;
    }
    if seen == 0 {
        return Err(TableError { line: 0, message: "the file is empty (expected a header row)".into() }.into());
    }
    Ok(seen)
}

/// The field delimiter of `text`, from its first non-blank line (the header): `,` if it holds a comma (or
/// nothing else), else a tab if it holds one, else `;` if it holds one.
pub fn delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if header.contains(',') {
        b','
    } else if header.contains('\t') {
        b'\t'
    } else if header.contains(';') {
        b';'
    } else {
        b','
    }
}

/// A field quoted after a space (`a, "b"`), which RFC 4180 reads as the literal text `"b"` with its quotes:
/// common in hand-written files, so read as `b` (an inner `""` as one quote).
fn unquote_spaced(f: &str) -> std::borrow::Cow<'_, str> {
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
        std::borrow::Cow::Owned(f[1..f.len() - 1].replace("\"\"", "\""))
    } else {
        std::borrow::Cow::Borrowed(f)
    }
}

/// Writes a header and rows as CSV text (see the module docs).
pub fn write_rows<S: AsRef<str>>(header: &[S], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = writer();
    w.write_record(header.iter().map(AsRef::as_ref)).expect("writing to memory");
    for r in rows {
        w.write_record(&r).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("fields are UTF-8")
}

/// A CSV writer into memory.
pub type Writer = csv::Writer<Vec<u8>>;

/// The writer [`write_rows`] uses (into memory; `\n` line ends, quotes only where needed), for callers that
/// write cells one by one.
pub fn writer() -> Writer {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .flexible(true)
        .from_writer(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = Vec<(usize, Vec<String>)>;

    fn read(text: &str) -> Result<(Vec<String>, Rows), TableError> {
        let mut head = Vec::new();
        let mut rows = Vec::new();
        read_rows::<TableError>(text, |line, f| {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            if head.is_empty() {
                head = f;
            } else {
                rows.push((line, f));
            }
            Ok(())
        })?;
        Ok((head, rows))
    }

    #[test]
    fn quoted_commas_quotes_and_line_breaks_are_one_field() {
        let (h, rows) = read("\u{feff}t, \"v\"\n\n0,\"1,234\"\n1,\"say \"\"hi\"\"\"\n2,\"two\nlines\"\n3,4\n").unwrap();
        assert_eq!(h, ["t", "v"]);
        assert_eq!(rows[0], (3, vec!["0".into(), "1,234".into()]));
        assert_eq!(rows[1].1[1], "say \"hi\"");
        assert_eq!(rows[2].1[1], "two\nlines");
        assert_eq!(rows[3].0, 7, "lines count the line break inside the quoted field");
    }

    #[test]
    fn lines_are_counted_past_blank_lines_and_crlf() {
        let lines = |t: &str| read(t).unwrap().1.into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(lines("a,b\n0,1\n\n\n1,2\n"), [2, 5]);
        assert_eq!(lines("a,b\r\n\r\n0,1\r\n"), [3]);
    }

    #[test]
    fn tab_and_semicolon_separated_headers_set_the_delimiter() {
        let (h, rows) = read("time\trequests\n0\t1.5\n60\t2\n").unwrap();
        assert_eq!(h, ["time", "requests"]);
        assert_eq!(rows[1].1, ["60", "2"]);
        let (h, rows) = read("\n\"time\";\"requests\"\r\n0;1.5\r\n").unwrap();
        assert_eq!(h, ["time", "requests"]);
        assert_eq!(rows[0], (3, vec!["0".into(), "1.5".into()]));
        // A comma in the header decides: a semicolon inside a field stays text.
        let (h, rows) = read("a,b\n0,x;y\n").unwrap();
        assert_eq!(h, ["a", "b"]);
        assert_eq!(rows[0].1, ["0", "x;y"]);
        // One column: no delimiter to find.
        assert_eq!(read("value\n3\n").unwrap().1[0].1, ["3"]);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(read("").unwrap_err().line, 0);
        assert_eq!(read("\n  \n").unwrap_err().message, "the file is empty (expected a header row)");
    }

    #[test]
    fn what_is_written_reads_back() {
        let rows = vec![vec!["1,234".to_string(), "x".into()], vec!["say \"hi\"".into(), String::new()]];
        let text = write_rows(&["a", "b"], rows.clone());
        assert_eq!(text, "a,b\n\"1,234\",x\n\"say \"\"hi\"\"\",\n");
        let (h, back) = read(&text).unwrap();
        assert_eq!(h, ["a", "b"]);
        assert_eq!(back.into_iter().map(|r| r.1).collect::<Vec<_>>(), rows);
    }
}
