//! Rows of a serialisable struct as CSV cells, without building a JSON value per row (a 28-day run's
//! `timeseries.csv` is 40,320 rows × 39 columns: through `serde_json::Value` maps it cost four times the
//! simulation). Cells are the same text as [`cell_text`] of the field's JSON value — numbers as
//! serde_json writes them, `None` and non-finite floats empty, strings as they are — and anything else (a
//! nested struct, a sequence) goes through that JSON value, so the bytes do not depend on the path taken.

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::Value;

/// Rows per chunk when a table is formatted on several threads: large enough that a chunk's set-up (one
/// writer) is noise, small enough that a 28-day run's 40,320 rows spread over the cores.
const CHUNK_ROWS: usize = 4096;

/// A JSON value as a CSV cell: null (NaN) is empty, a string is itself, anything else its JSON text.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `rows` as CSV (header from the field names) with the one CSV writer's settings, if every row is a struct;
/// `None` otherwise (the caller then takes the JSON route for all of them).
///
/// Long tables are formatted in chunks of [`CHUNK_ROWS`] rows on rayon's threads and joined in order: a row's
/// text depends on the row alone, so the bytes are those of one pass (a test holds the two against each other).
pub(crate) fn structs_to_csv<T: Serialize + Sync>(rows: &[T]) -> Option<String> {
    use rayon::prelude::*;
    let mut text = header(rows.first()?)?;
    let chunks: Vec<Option<Vec<u8>>> = rows.par_chunks(CHUNK_ROWS).map(|chunk| records(chunk)).collect();
    for chunk in chunks {
        text.extend_from_slice(&chunk?);
    }
    Some(String::from_utf8(text).expect("fields are UTF-8"))
}

/// The CSV header line of a table whose first row is `first` (its field names); `None` if it is not a struct.
pub(crate) fn header<T: Serialize>(first: &T) -> Option<Vec<u8>> {
    let mut names = RowSerializer { out: Out::Names(Vec::new()) };
    first.serialize(&mut names).ok()?;
    let Out::Names(names) = names.out else { unreachable!("names collected") };
    let mut w = prescale_sim::table::writer();
    w.write_record(&names).expect("writing to memory");
    Some(w.into_inner().expect("writing to memory"))
}

/// The CSV records of `rows` (no header); `None` if one is not a struct. A record's text depends on its row
/// alone: the records of consecutive slices, joined, are those of the whole.
pub(crate) fn records<T: Serialize>(rows: &[T]) -> Option<Vec<u8>> {
    let mut text = Vec::new();
    records_into(&mut text, rows)?;
    Some(text)
}

/// [`records`], appended to `text`; `None` if a row is not a struct (`text` then holds part of the records).
pub(crate) fn records_into<T: Serialize>(text: &mut Vec<u8>, rows: &[T]) -> Option<()> {
    let mut r = RowSerializer { out: Out::Cells { text: std::mem::take(text), fields: 0 } };
    let mut all_structs = true;
    for row in rows {
        if row.serialize(&mut r).is_err() {
            all_structs = false;
            break;
        }
        let Out::Cells { text, fields } = &mut r.out else { unreachable!("writing cells") };
        text.push(b'\n');
        *fields = 0;
    }
    let Out::Cells { text: written, .. } = r.out else { unreachable!("writing cells") };
    *text = written;
    all_structs.then_some(())
}

/// Whether the one CSV writer ([`prescale_sim::table::writer`]) quotes a cell: where it holds a comma, a quote
/// or a line end.
fn needs_quotes(cell: &[u8]) -> bool {
    cell.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// Appends one cell as the one CSV writer writes it: quoted, with quotes doubled, only where it
/// [`needs_quotes`].
fn push_cell(text: &mut Vec<u8>, cell: &[u8]) {
    if needs_quotes(cell) {
        text.push(b'"');
        for &b in cell {
            if b == b'"' {
                text.push(b'"');
            }
            text.push(b);
        }
        text.push(b'"');
    } else {
        text.extend_from_slice(cell);
    }
}

#[derive(Debug)]
pub(crate) struct NotAStruct;

impl std::fmt::Display for NotAStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a struct")
    }
}
impl std::error::Error for NotAStruct {}
impl ser::Error for NotAStruct {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotAStruct
    }
}

enum Out {
    Names(Vec<&'static str>),
    /// The records so far (each cell is formatted straight into it) and the fields written of the current
    /// record.
    Cells {
        text: Vec<u8>,
        fields: usize,
    },
}

struct RowSerializer {
    out: Out,
}

impl ser::SerializeStruct for &mut RowSerializer {
    type Ok = ();
    type Error = NotAStruct;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), NotAStruct> {
        match &mut self.out {
            Out::Names(names) => names.push(key),
            Out::Cells { text, fields } => {
                if *fields > 0 {
                    text.push(b',');
                }
                *fields += 1;
                let start = text.len();
                match value.serialize(CellSerializer { text: &mut *text }) {
                    // Numbers, booleans and empty cells never need quotes.
                    Ok(Cell::Bare) => {}
                    Ok(Cell::Text) => {
                        if needs_quotes(&text[start..]) {
                            let cell = text.split_off(start);
                            push_cell(text, &cell);
                        }
                    }
                    Err(NotAStruct) => {
                        // Anything but a scalar: its JSON value's cell text.
                        text.truncate(start);
                        let cell = cell_text(&serde_json::to_value(value).expect("rows serialise"));
                        push_cell(text, cell.as_bytes());
                    }
                }
            }
        }
        Ok(())
    }
    fn end(self) -> Result<(), NotAStruct> {
        Ok(())
    }
}

/// What a scalar wrote: text that never needs quotes, or a string's (which may).
enum Cell {
    Bare,
    Text,
}

/// Appends a scalar's cell text to `text`; refuses (so the caller takes the JSON route) what it does not know.
struct CellSerializer<'a> {
    text: &'a mut Vec<u8>,
}

/// Integers: their decimal digits, by serde_json's own formatter.
macro_rules! integers {
    ($($name:ident($arg:ty) => $write:ident;)*) => {
        $(fn $name(self, v: $arg) -> Result<Cell, NotAStruct> {
            serde_json::ser::Formatter::$write(&mut serde_json::ser::CompactFormatter, self.text, v)
                .map_err(|_| NotAStruct)?;
            Ok(Cell::Bare)
        })*
    };
}

macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, NotAStruct> { Err(NotAStruct) })*
    };
}

impl ser::Serializer for CellSerializer<'_> {
    type Ok = Cell;
    type Error = NotAStruct;
    type SerializeSeq = Impossible<Cell, NotAStruct>;
    type SerializeTuple = Impossible<Cell, NotAStruct>;
    type SerializeTupleStruct = Impossible<Cell, NotAStruct>;
    type SerializeTupleVariant = Impossible<Cell, NotAStruct>;
    type SerializeMap = Impossible<Cell, NotAStruct>;
    type SerializeStruct = Impossible<Cell, NotAStruct>;
    type SerializeStructVariant = Impossible<Cell, NotAStruct>;

    fn serialize_bool(self, v: bool) -> Result<Cell, NotAStruct> {
        self.text.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(Cell::Bare)
    }
    integers! {
        serialize_i8(i8) => write_i8;
        serialize_i16(i16) => write_i16;
        serialize_i32(i32) => write_i32;
        serialize_i64(i64) => write_i64;
        serialize_u8(u8) => write_u8;
        serialize_u16(u16) => write_u16;
        serialize_u32(u32) => write_u32;
        serialize_u64(u64) => write_u64;
    }
    fn serialize_f64(self, v: f64) -> Result<Cell, NotAStruct> {
        // A JSON value holds no NaN or infinity: it becomes null, an empty cell. A finite number is written by
        // serde_json's own formatter, so its text is the JSON route's.
        if v.is_finite() {
            serde_json::ser::Formatter::write_f64(&mut serde_json::ser::CompactFormatter, self.text, v)
                .map_err(|_| NotAStruct)?;
        }
        Ok(Cell::Bare)
    }
    fn serialize_str(self, v: &str) -> Result<Cell, NotAStruct> {
        self.text.extend_from_slice(v.as_bytes());
        Ok(Cell::Text)
    }
    fn serialize_none(self) -> Result<Cell, NotAStruct> {
        Ok(Cell::Bare)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Cell, NotAStruct> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Cell, NotAStruct> {
        Ok(Cell::Bare)
    }
    refuse! {
        serialize_f32(f32) -> Cell;
        serialize_char(char) -> Cell;
        serialize_bytes(&[u8]) -> Cell;
        serialize_unit_struct(&'static str) -> Cell;
        serialize_unit_variant(&'static str, u32, &'static str) -> Cell;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<Cell, NotAStruct> {
        Err(NotAStruct)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Cell, NotAStruct> {
        Err(NotAStruct)
    }
}

/// Only structs make rows.
impl ser::Serializer for &mut RowSerializer {
    type Ok = ();
    type Error = NotAStruct;
    type SerializeSeq = Impossible<(), NotAStruct>;
    type SerializeTuple = Impossible<(), NotAStruct>;
    type SerializeTupleStruct = Impossible<(), NotAStruct>;
    type SerializeTupleVariant = Impossible<(), NotAStruct>;
    type SerializeMap = Impossible<(), NotAStruct>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), NotAStruct>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotAStruct> {
        Ok(self)
    }
    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), NotAStruct> {
        Err(NotAStruct)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<(), NotAStruct> {
        Err(NotAStruct)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotAStruct> {
        Err(NotAStruct)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Inner {
        a: f64,
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Tuple(u8),
    }

    #[derive(Serialize)]
    struct Row {
        x: f64,
        n: u32,
        i: i64,
        b: u8,
        yes: bool,
        maybe: Option<u8>,
        text: String,
        kind: Kind,
        inner: Inner,
        list: Vec<u8>,
        small: f32,
    }

    /// Every kind of cell, the direct route against the JSON route (the definition), byte for byte.
    #[test]
    fn the_direct_route_writes_the_json_routes_bytes() {
        let xs = [0.0, -0.0, 1.0, -2.5, 0.1, 1e-300, 1.7976931348623157e308, 123456789.125, f64::NAN, f64::INFINITY];
        let rows: Vec<Row> = xs
            .iter()
            .enumerate()
            .map(|(k, &x)| Row {
                x,
                n: k as u32 * 1_000_000,
                i: -(k as i64),
                b: k as u8,
                yes: k % 2 == 0,
                maybe: (k % 3 == 0).then_some(7),
                text: ["plain", "a,comma", "a \"quote\"", "", "line\nbreak"][k % 5].to_string(),
                kind: if k % 2 == 0 { Kind::Unit } else { Kind::Tuple(3) },
                inner: Inner { a: x * 0.5 },
                list: vec![1, 2],
                small: 0.1,
            })
            .collect();
        let direct = super::structs_to_csv(&rows).expect("structs");
        assert_eq!(direct, crate::files::results::to_csv_via_json(&rows));
        assert!(direct.lines().nth(1).unwrap().starts_with("0.0,0,0,0,true,7,plain,Unit,"), "{direct}");
        // A table of several chunks (formatted on several threads) is the same text as one pass.
        let many: Vec<Inner> = (0..3 * super::CHUNK_ROWS + 17).map(|k| Inner { a: k as f64 / 7.0 }).collect();
        assert_eq!(super::structs_to_csv(&many).expect("structs"), crate::files::results::to_csv_via_json(&many));
        // Not structs: no direct route.
        assert!(super::structs_to_csv(&[1.0f64]).is_none());
    }
}
