//! Reading an export one user at a time: Django's `dumpdata` JSON (a top-level
//! array read element by element, never whole) or a CSV with `id,email,username,password`.

use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use std::fmt;
use std::io::BufReader;
use std::path::Path;

/// The two export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `python manage.py dumpdata <app.User> --format json`.
    Json,
    /// A header line naming `id,email,username,password` (any order; `is_active`
    /// and `date_joined` columns are read when present), then one user a line.
    Csv,
}

impl Format {
    /// `csv` for a `.csv` file, else `json`.
    pub(crate) fn guess(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Json,
        }
    }
}

/// One user as the export has it, before any check.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Record {
    /// Where it is: the record's number in a JSON array (from 1), or its line in a CSV.
    pub(crate) at: u64,
    /// The primary key as written (`pk`, or the `id` column).
    pub(crate) pk: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// Absent: active.
    pub(crate) is_active: Option<bool>,
    pub(crate) date_joined: Option<String>,
    /// Why the record cannot be read as a user, if it cannot.
    pub(crate) malformed: Option<String>,
}

/// Why the export cannot be read on (a record that cannot be read is a
/// `Record` with `malformed`; this is the file as a whole).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening or reading the file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JSON array of objects, or its syntax breaks off.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

/// Call `each` with every record of `path`, in file order. `each` may stop the
/// reading with an error of its own, which is returned as it is.
pub(crate) fn for_each<E: From<SourceError>>(
    path: &Path,
    format: Format,
    mut each: impl FnMut(Record) -> Result<(), E>,
) -> Result<(), E> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
        path: name.clone(),
        source,
    })?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    match format {
        Format::Json => json(reader, &name, &mut each),
        Format::Csv => csv(reader, &name, &mut each),
    }
}

fn json<E: From<SourceError>>(
    reader: impl std::io::Read,
    name: &str,
    each: &mut impl FnMut(Record) -> Result<(), E>,
) -> Result<(), E> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut stopped = None;
    let read = de
        .deserialize_seq(Elements {
            each,
            stopped: &mut stopped,
        })
        .and_then(|()| de.end());
    if let Some(e) = stopped {
        return Err(e);
    }
    read.map_err(|e| {
        SourceError::Syntax {
            path: name.to_owned(),
            message: e.to_string(),
        }
        .into()
    })
}

/// Visits the top-level array, one element in memory at a time.
struct Elements<'a, F, E> {
    each: &'a mut F,
    /// The error `each` stopped with.
    stopped: &'a mut Option<E>,
}

impl<'de, F, E> Visitor<'de> for Elements<'_, F, E>
where
    F: FnMut(Record) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of user objects, as `manage.py dumpdata` writes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut at = 0;
        while let Some(element) = seq.next_element::<serde_json::Value>()? {
            at += 1;
            if let Err(e) = (self.each)(from_json(at, &element)) {
                *self.stopped = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// A `dumpdata` object: `{"model", "pk", "fields": {"email", "username", "password", "is_active", "date_joined", ...}}`.
fn from_json(at: u64, v: &serde_json::Value) -> Record {
    use serde_json::Value;
    let mut r = Record {
        at,
        ..Record::default()
    };
    r.pk = match v.get("pk") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(fields) = v.get("fields").and_then(Value::as_object) else {
        r.malformed = Some("not a dumpdata object (no `fields` object)".into());
        return r;
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`fields.{key}` is {other}, not a string")),
        }
    };
    let read = (|| -> Result<(), String> {
        r.email = text("email")?;
        r.username = text("username")?;
        r.password = text("password")?;
        r.date_joined = text("date_joined")?;
        r.is_active = match fields.get("is_active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => return Err(format!("`fields.is_active` is {other}, not true or false")),
        };
        Ok(())
    })();
    r.malformed = read.err();
    r
}

/// The columns of a CSV export, by position.
struct Columns {
    id: usize,
    email: usize,
    username: usize,
    password: usize,
    is_active: Option<usize>,
    date_joined: Option<usize>,
    count: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, String> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                format!("the header line has no `{name}` column (id,email,username,password)")
            })
        };
        Ok(Columns {
            id: need("id")?,
            email: need("email")?,
            username: need("username")?,
            password: need("password")?,
            is_active: find("is_active"),
            date_joined: find("date_joined"),
            count: header.len(),
        })
    }

    fn record(&self, at: u64, row: &csv::StringRecord) -> Record {
        let get = |i: usize| row.get(i).map(|f| f.trim_end_matches('\r').to_owned());
        let mut r = Record {
            at,
            ..Record::default()
        };
        if row.len() != self.count {
            r.malformed = Some(format!(
                "{} fields where the header has {}",
                row.len(),
                self.count
            ));
            return r;
        }
        r.pk = get(self.id);
        r.email = get(self.email).filter(|e| !e.is_empty());
        r.username = get(self.username);
        r.password = get(self.password);
        r.date_joined = self.date_joined.and_then(get).filter(|d| !d.is_empty());
        r.is_active = match self.is_active.and_then(get).as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) if ["1", "t", "true", "True"].contains(&v) => Some(true),
            Some(v) if ["0", "f", "false", "False"].contains(&v) => Some(false),
            Some(v) => {
                r.malformed = Some(format!("is_active is {v:?}, not true or false"));
                None
            }
        };
        r
    }
}

fn csv<E: From<SourceError>>(
    reader: impl std::io::Read,
    name: &str,
    each: &mut impl FnMut(Record) -> Result<(), E>,
) -> Result<(), E> {
    let syntax = |message: String| SourceError::Syntax {
        path: name.to_owned(),
        message,
    };
    // Records end at `\n` only: with the default (`\r` too), a CRLF file's records
    // would start on the previous line. A `\r` left at the end of a field is dropped.
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(reader);
    let header = rd.headers().map_err(|e| syntax(e.to_string()))?.clone();
    let columns = Columns::from_header(&header).map_err(syntax)?;
    let mut row = csv::StringRecord::new();
    loop {
        let read = rd.read_record(&mut row);
        let at = rd.position().line();
        match read {
            Ok(false) => return Ok(()),
            Ok(true) => {
                // The reader's position is past the record: its own is where it began.
                let at = row.position().map_or(at, |p| p.line());
                each(columns.record(at, &row))?;
            }
            // A line that is not UTF-8 is one bad record; the reader goes on after it.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let at = e.position().map_or(at, |p| p.line());
                each(Record {
                    at,
                    malformed: Some("not UTF-8".into()),
                    ..Record::default()
                })?;
            }
            Err(e) => return Err(syntax(e.to_string()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: Format, text: &str) -> Result<Vec<Record>, SourceError> {
        let mut out = Vec::new();
        let each = &mut |r| {
            out.push(r);
            Ok::<(), SourceError>(())
        };
        match format {
            Format::Json => json(text.as_bytes(), "x", each),
            Format::Csv => csv(text.as_bytes(), "x", each),
        }?;
        Ok(out)
    }

    #[test]
    fn dumpdata_objects_one_by_one() {
        let text = r#"[{"model": "auth.user", "pk": 7, "fields": {"password": "p", "email": "A@x.io",
            "username": "a", "is_active": false, "date_joined": "2019-03-04T05:06:00.123Z", "groups": []}},
            {"model": "auth.group", "pk": 1, "fields": {"name": "staff"}},
            {"pk": "8", "fields": {"email": 5}}, 3]"#;
        let r = read(Format::Json, text).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].pk.as_deref(), Some("7"));
        assert_eq!(r[0].email.as_deref(), Some("A@x.io"));
        assert_eq!(r[0].is_active, Some(false));
        assert_eq!(r[0].malformed, None);
        assert_eq!(r[1].password, None);
        assert_eq!(r[2].at, 3);
        assert!(r[2].malformed.as_deref().unwrap().contains("fields.email"));
        assert!(r[3].malformed.is_some());
        let err = read(Format::Json, r#"[{"pk": 1, "fields": {}}, {"pk": "#).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(read(Format::Json, r#"{"pk": 1}"#).is_err());
    }

    #[test]
    fn csv_rows_by_line() {
        let text = "id,email,username,password\r\n7,A@x.io,a,\"p,1\"\r\n8,b@x.io\r\n9,\"c\nd@x.io\",c,p\r\n10,,e,p\r\n";
        let r = read(Format::Csv, text).unwrap();
        assert_eq!(r, read(Format::Csv, &text.replace("\r\n", "\n")).unwrap());
        assert_eq!(r.len(), 4);
        assert_eq!(
            (r[0].at, r[0].pk.as_deref(), r[0].password.as_deref()),
            (2, Some("7"), Some("p,1"))
        );
        assert!(r[1].malformed.as_deref().unwrap().contains("2 fields"));
        assert_eq!(r[2].email.as_deref(), Some("c\nd@x.io"));
        assert_eq!((r[3].at, r[3].email.as_deref()), (6, None));
        let err = read(Format::Csv, "id,mail,username,password\n").unwrap_err();
        assert!(err.to_string().contains("`email`"), "{err}");
    }
}
