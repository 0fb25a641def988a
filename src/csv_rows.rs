//! Rows of a serialisable struct as CSV cells, without building a JSON value per row (a 28-day run's
//! `timeseries.csv` is 40,320 rows × 39 columns: through `serde_json::Value` maps it cost four times the
//! simulation). Cells are the same text as [`crate::results::cell_text`] of the field's JSON value — numbers as
//! serde_json writes them, `None` and non-finite floats empty, strings as they are — and anything else (a
//! nested struct, a sequence) goes through that JSON value, so the bytes do not depend on the path taken.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `rows` as CSV (header from the field names) with the one CSV writer's settings, if every row is a struct;
/// `None` otherwise (the caller then takes the JSON route for all of them).
pub(crate) fn structs_to_csv<T: Serialize>(rows: &[T]) -> Option<String> {
    let first = rows.first()?;
    let mut names = RowSerializer { out: Out::Names(Vec::new()) };
    first.serialize(&mut names).ok()?;
    let Out::Names(names) = names.out else { unreachable!("names collected") };
    let mut w = prescale_sim::table::writer();
    w.write_record(&names).expect("writing to memory");
    let mut r = RowSerializer { out: Out::Cells { w: Box::new(w), buf: Vec::new(), cell: String::new() } };
    for row in rows {
        row.serialize(&mut r).ok()?;
        let Out::Cells { w, .. } = &mut r.out else { unreachable!("writing cells") };
        w.write_record(None::<&[u8]>).expect("writing to memory");
    }
    let Out::Cells { w, .. } = r.out else { unreachable!("writing cells") };
    Some(String::from_utf8(w.into_inner().expect("writing to memory")).expect("fields are UTF-8"))
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
    /// The writer, a buffer for numbers and one for a cell's text (reused: no allocation per cell).
    Cells {
        w: Box<prescale_sim::table::Writer>,
        buf: Vec<u8>,
        cell: String,
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
            Out::Cells { w, buf, cell } => {
                cell.clear();
                if value.serialize(CellSerializer { buf, cell: &mut *cell }).is_err() {
                    // Anything but a scalar: its JSON value's cell text.
                    *cell = crate::results::cell_text(&serde_json::to_value(value).expect("rows serialise"));
                }
                w.write_field(cell.as_bytes()).expect("writing to memory");
            }
        }
        Ok(())
    }
    fn end(self) -> Result<(), NotAStruct> {
        Ok(())
    }
}

/// Writes a scalar's cell text into `cell`; refuses (so the caller takes the JSON route) what it does not know.
struct CellSerializer<'a> {
    buf: &'a mut Vec<u8>,
    cell: &'a mut String,
}

impl CellSerializer<'_> {
    fn display(self, v: impl std::fmt::Display) -> Result<(), NotAStruct> {
        use std::fmt::Write as _;
        write!(self.cell, "{v}").map_err(|_| NotAStruct)
    }
}

/// Scalars whose cell text is their `Display` (the same as their JSON text).
macro_rules! displayed {
    ($($name:ident($arg:ty);)*) => {
        $(fn $name(self, v: $arg) -> Result<(), NotAStruct> { self.display(v) })*
    };
}

macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, NotAStruct> { Err(NotAStruct) })*
    };
}

impl ser::Serializer for CellSerializer<'_> {
    type Ok = ();
    type Error = NotAStruct;
    type SerializeSeq = Impossible<(), NotAStruct>;
    type SerializeTuple = Impossible<(), NotAStruct>;
    type SerializeTupleStruct = Impossible<(), NotAStruct>;
    type SerializeTupleVariant = Impossible<(), NotAStruct>;
    type SerializeMap = Impossible<(), NotAStruct>;
    type SerializeStruct = Impossible<(), NotAStruct>;
    type SerializeStructVariant = Impossible<(), NotAStruct>;

    displayed! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
    }
    fn serialize_f64(self, v: f64) -> Result<(), NotAStruct> {
        // A JSON value holds no NaN or infinity: it becomes null, an empty cell. A number is written by
        // serde_json itself, so its text is the JSON route's.
        if v.is_finite() {
            self.buf.clear();
            serde_json::to_writer(&mut *self.buf, &v).map_err(|_| NotAStruct)?;
            self.cell.push_str(std::str::from_utf8(self.buf).map_err(|_| NotAStruct)?);
        }
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), NotAStruct> {
        self.cell.push_str(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), NotAStruct> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotAStruct> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotAStruct> {
        Ok(())
    }
    refuse! {
        serialize_f32(f32) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
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
        assert_eq!(direct, crate::results::to_csv_via_json(&rows));
        assert!(direct.lines().nth(1).unwrap().starts_with("0.0,0,0,0,true,7,plain,Unit,"), "{direct}");
        // Not structs: no direct route.
        assert!(super::structs_to_csv(&[1.0f64]).is_none());
    }
}
