//! Avro schema compatibility: can a reader schema read data written with a
//! writer schema? Follows the Avro specification's resolution rules the way
//! Confluent's registry applies them (Avro's `SchemaCompatibility`, checked
//! against Confluent's own checker by tests/confluent_oracle.rs):
//!
//! - logical types are ignored: a decimal, date, timestamp or uuid resolves
//!   by its underlying type, as data in it is encoded (so a decimal whose
//!   precision or scale changes stays readable; the value is reinterpreted);
//! - named types match by unqualified name, or through a reader alias whose
//!   full name is the writer's full name;
//! - a reader enum with a default reads symbols it does not know.
//!
//! Primitive leaves (promotions) are judged by apache-avro's
//! `SchemaCompatibility`; the structure is walked here because apache-avro
//! 0.21 differs from the specification on enum defaults, aliases and logical
//! types.

use apache_avro::Schema;
use apache_avro::schema::{Name, NamesRef, ResolvedSchema};
use apache_avro::schema_compatibility::SchemaCompatibility;
use std::collections::HashSet;

/// Why `reader` cannot read `writer`, or Ok.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    let writer_names = ResolvedSchema::try_from(writer).map_err(|e| format!("writer schema: {e}"))?;
    let reader_names = ResolvedSchema::try_from(reader).map_err(|e| format!("reader schema: {e}"))?;
    let mut walk =
        Walk { writer_names: writer_names.get_names(), reader_names: reader_names.get_names(), seen: HashSet::new() };
    walk.check(writer, reader, "")
}

struct Walk<'a> {
    writer_names: &'a NamesRef<'a>,
    reader_names: &'a NamesRef<'a>,
    /// Named pairs already being checked (recursive types).
    seen: HashSet<(String, String)>,
}

fn full(name: &Name) -> String {
    name.fullname(None)
}

impl<'a> Walk<'a> {
    fn deref<'s>(&self, schema: &'s Schema, names: &'s NamesRef<'a>) -> &'s Schema
    where
        'a: 's,
    {
        match schema {
            Schema::Ref { name } => names.get(name).copied().unwrap_or(schema),
            other => other,
        }
    }

    fn check(&mut self, writer: &Schema, reader: &Schema, path: &str) -> Result<(), String> {
        let writer = underlying(self.deref(writer, self.writer_names));
        let reader = underlying(self.deref(reader, self.reader_names));
        let at = |msg: String| if path.is_empty() { msg } else { format!("{path}: {msg}") };
        match (writer, reader) {
            (Schema::Union(w), _) => {
                // Every branch the writer may have used must be readable.
                for branch in w.variants() {
                    self.check(branch, reader, path)?;
                }
                Ok(())
            }
            (_, Schema::Union(r)) => {
                let readable = r.variants().iter().any(|branch| {
                    let saved = self.seen.clone();
                    let ok = self.check(writer, branch, path).is_ok();
                    self.seen = saved;
                    ok
                });
                if readable {
                    Ok(())
                } else {
                    Err(at(format!("no branch of the reader's union can read the writer's {}", kind(writer))))
                }
            }
            (Schema::Record(w), Schema::Record(r)) => {
                names_match(&w.name, &r.name, r.aliases.as_deref()).map_err(at)?;
                if !self.seen.insert((full(&w.name), full(&r.name))) {
                    return Ok(());
                }
                for field in &r.fields {
                    let found = w.fields.iter().find(|wf| {
                        wf.name == field.name || field.aliases.as_ref().is_some_and(|a| a.contains(&wf.name))
                    });
                    let field_path =
                        if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
                    match found {
                        Some(wf) => self.check(&wf.schema, &field.schema, &field_path)?,
                        None if field.default.is_some() => {}
                        None => {
                            return Err(format!(
                                "field `{field_path}` is new in the reader and has no default, so old data cannot be read"
                            ));
                        }
                    }
                }
                Ok(())
            }
            (Schema::Enum(w), Schema::Enum(r)) => {
                names_match(&w.name, &r.name, r.aliases.as_deref()).map_err(at)?;
                let missing: Vec<&String> = w.symbols.iter().filter(|s| !r.symbols.contains(s)).collect();
                if missing.is_empty() || r.default.is_some() {
                    Ok(())
                } else {
                    Err(at(format!(
                        "enum {} lacks symbol(s) {missing:?} that the writer may use, and has no default",
                        r.name.name
                    )))
                }
            }
            (Schema::Fixed(w), Schema::Fixed(r)) => {
                names_match(&w.name, &r.name, r.aliases.as_deref()).map_err(at)?;
                if w.size == r.size {
                    Ok(())
                } else {
                    Err(at(format!("fixed size {} cannot be read as size {}", w.size, r.size)))
                }
            }
            (Schema::Array(w), Schema::Array(r)) => self.check(&w.items, &r.items, &format!("{path}[]")),
            (Schema::Map(w), Schema::Map(r)) => self.check(&w.types, &r.types, &format!("{path}{{}}")),
            (w, r) if is_named(w) || is_named(r) || is_container(w) || is_container(r) => {
                Err(at(format!("a {} cannot be read as a {}", kind(w), kind(r))))
            }
            (Schema::Duration, Schema::Duration) => Ok(()),
            (w, r) => SchemaCompatibility::can_read(w, r)
                .map_err(|_| at(format!("a {} cannot be read as a {}", kind(w), kind(r)))),
        }
    }
}

/// The schema data is encoded with: logical types are annotations (Avro's
/// `SchemaCompatibility` ignores them, and so does Confluent).
fn underlying(schema: &Schema) -> &Schema {
    match schema {
        Schema::Decimal(d) => underlying(&d.inner),
        Schema::BigDecimal => &Schema::Bytes,
        Schema::Uuid => &Schema::String,
        Schema::Date | Schema::TimeMillis => &Schema::Int,
        Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => &Schema::Long,
        other => other,
    }
}

/// Names match by unqualified name (namespace-only renames are fine, as in
/// Confluent's checker), or through a reader alias whose full name (relative
/// to the reader's namespace) is the writer's full name.
fn names_match(
    writer: &Name,
    reader: &Name,
    reader_aliases: Option<&[apache_avro::schema::Alias]>,
) -> Result<(), String> {
    if writer.name == reader.name {
        return Ok(());
    }
    let aliased =
        reader_aliases.unwrap_or_default().iter().any(|a| a.fullname(reader.namespace.clone()) == full(writer));
    if aliased {
        Ok(())
    } else {
        Err(format!("the writer's {} cannot be read as {} (add an alias to rename)", full(writer), full(reader)))
    }
}

fn is_named(s: &Schema) -> bool {
    matches!(s, Schema::Record(_) | Schema::Enum(_) | Schema::Fixed(_))
}

fn is_container(s: &Schema) -> bool {
    matches!(s, Schema::Array(_) | Schema::Map(_))
}

fn kind(s: &Schema) -> String {
    match s {
        Schema::Record(r) => format!("record {}", r.name.name),
        Schema::Enum(e) => format!("enum {}", e.name.name),
        Schema::Fixed(f) => format!("fixed {}", f.name.name),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

/// The specification forbids two branches of one union with the same type
/// (or, for named types, the same name). apache-avro 0.21 lets a decimal sit
/// beside `bytes`; Avro Java (and so Confluent) refuses that schema.
pub(crate) fn check_unions(schema: &Schema) -> Result<(), String> {
    match schema {
        Schema::Union(u) => {
            let mut seen = HashSet::new();
            for branch in u.variants() {
                let key = match underlying(branch) {
                    Schema::Record(r) => full(&r.name),
                    Schema::Enum(e) => full(&e.name),
                    Schema::Fixed(f) => full(&f.name),
                    Schema::Ref { name } => full(name),
                    other => kind(other),
                };
                if !seen.insert(key.clone()) {
                    return Err(format!("duplicate in union: {key}"));
                }
                check_unions(branch)?;
            }
            Ok(())
        }
        Schema::Record(r) => r.fields.iter().try_for_each(|f| check_unions(&f.schema)),
        Schema::Array(a) => check_unions(&a.items),
        Schema::Map(m) => check_unions(&m.types),
        _ => Ok(()),
    }
}
