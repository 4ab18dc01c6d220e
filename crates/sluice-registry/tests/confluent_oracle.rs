//! Differential test against Confluent's own checker: every case (a table of
//! known traps plus a few hundred generated pairs and chains) is judged by
//! `sluice_registry::Level::check` and by Confluent Schema Registry 7.0's
//! `CompatibilityChecker` (tests/oracle/ConfluentCompat.java on Java 17, jars
//! installed by `make setup`) under every level, and both must agree. Schema
//! identity (which texts are "the same schema", so the same id without a
//! check) must agree with Confluent's `AvroSchema.canonicalString()` too.
//!
//! Where Confluent 7.0 is arguably wrong against the Avro specification we do
//! not silently diverge: the case is listed in `DOCUMENTED_DIFFERENCES`.

mod oracle_support;

use apache_avro::Schema;
use oracle_support::{Case, Verdict, run_oracle};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::{Map, Value, json};
use sluice_registry::Level;
use std::collections::BTreeMap;

const LEVELS: [(Level, &str); 7] = [
    (Level::None, "NONE"),
    (Level::Backward, "BACKWARD"),
    (Level::BackwardTransitive, "BACKWARD_TRANSITIVE"),
    (Level::Forward, "FORWARD"),
    (Level::ForwardTransitive, "FORWARD_TRANSITIVE"),
    (Level::Full, "FULL"),
    (Level::FullTransitive, "FULL_TRANSITIVE"),
];

/// Cases where we knowingly differ from Confluent 7.0: (case label, why).
/// Keep it tiny; each entry is a deliberate decision.
const DOCUMENTED_DIFFERENCES: &[(&str, &str)] = &[(
    "invalid default: a string for an int",
    "Confluent 7.0 does not validate defaults and registers the schema; the Avro specification requires a \
     default to match the field's type (a reader would fail when it needs the default), so we answer 42201",
)];

// ---------------------------------------------------------------------------
// A small model of Avro schemas, rendered to JSON text.

#[derive(Clone, Debug)]
struct Named {
    name: String,
    namespace: Option<String>,
    aliases: Vec<String>,
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: Ty,
    default: Option<Value>,
    aliases: Vec<String>,
    doc: Option<String>,
}

#[derive(Clone, Debug)]
struct Rec {
    n: Named,
    fields: Vec<Field>,
}

#[derive(Clone, Debug)]
enum Ty {
    Prim(&'static str),
    /// (underlying primitive, logicalType)
    Logical(&'static str, &'static str),
    /// precision, scale, and a fixed (name, size) when not bytes-based
    Decimal(u32, u32, Option<(Named, usize)>),
    Record(Rec),
    Enum(Named, Vec<String>, Option<String>),
    Fixed(Named, usize),
    Array(Box<Ty>),
    Map(Box<Ty>),
    Union(Vec<Ty>),
}

/// How the text is written; both styles denote the same schema.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    /// Full names instead of `namespace`, `{"type": "int"}` for primitives,
    /// explicit `"order": "ascending"`.
    Verbose,
}

fn named_json(n: &Named, kind: &str, style: Style, m: &mut Map<String, Value>) {
    m.insert("type".into(), json!(kind));
    match (&n.namespace, style) {
        (Some(ns), Style::Verbose) => {
            m.insert("name".into(), json!(format!("{ns}.{}", n.name)));
        }
        (Some(ns), Style::Plain) => {
            m.insert("name".into(), json!(n.name));
            m.insert("namespace".into(), json!(ns));
        }
        (None, _) => {
            m.insert("name".into(), json!(n.name));
        }
    }
    if !n.aliases.is_empty() {
        m.insert("aliases".into(), json!(n.aliases));
    }
}

fn render(ty: &Ty, style: Style) -> Value {
    match ty {
        Ty::Prim(p) if style == Style::Verbose => json!({"type": p}),
        Ty::Prim(p) => json!(p),
        Ty::Logical(base, logical) => json!({"type": base, "logicalType": logical}),
        Ty::Decimal(precision, scale, None) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})
        }
        Ty::Decimal(precision, scale, Some((n, size))) => {
            let mut m = Map::new();
            named_json(n, "fixed", style, &mut m);
            m.insert("size".into(), json!(size));
            m.insert("logicalType".into(), json!("decimal"));
            m.insert("precision".into(), json!(precision));
            m.insert("scale".into(), json!(scale));
            Value::Object(m)
        }
        Ty::Record(r) => render_record(r, style),
        Ty::Enum(n, symbols, default) => {
            let mut m = Map::new();
            named_json(n, "enum", style, &mut m);
            m.insert("symbols".into(), json!(symbols));
            if let Some(d) = default {
                m.insert("default".into(), json!(d));
            }
            Value::Object(m)
        }
        Ty::Fixed(n, size) => {
            let mut m = Map::new();
            named_json(n, "fixed", style, &mut m);
            m.insert("size".into(), json!(size));
            Value::Object(m)
        }
        Ty::Array(items) => json!({"type": "array", "items": render(items, style)}),
        Ty::Map(values) => json!({"type": "map", "values": render(values, style)}),
        Ty::Union(branches) => Value::Array(branches.iter().map(|b| render(b, style)).collect()),
    }
}

fn render_record(r: &Rec, style: Style) -> Value {
    let mut m = Map::new();
    named_json(&r.n, "record", style, &mut m);
    let fields: Vec<Value> = r
        .fields
        .iter()
        .map(|f| {
            let mut fm = Map::new();
            fm.insert("name".into(), json!(f.name));
            fm.insert("type".into(), render(&f.ty, style));
            if let Some(d) = &f.default {
                fm.insert("default".into(), d.clone());
            }
            if !f.aliases.is_empty() {
                fm.insert("aliases".into(), json!(f.aliases));
            }
            if let Some(doc) = &f.doc {
                fm.insert("doc".into(), json!(doc));
            }
            if style == Style::Verbose {
                fm.insert("order".into(), json!("ascending"));
            }
            Value::Object(fm)
        })
        .collect();
    m.insert("fields".into(), Value::Array(fields));
    Value::Object(m)
}

fn text(r: &Rec) -> String {
    render_record(r, Style::Plain).to_string()
}

/// A valid default for `ty`, when one is easy to write.
fn default_for(ty: &Ty) -> Option<Value> {
    Some(match ty {
        Ty::Prim("null") => Value::Null,
        Ty::Prim("boolean") => json!(false),
        Ty::Prim("int" | "long") => json!(0),
        Ty::Prim("float" | "double") => json!(0.5),
        Ty::Prim(_) => json!(""),
        Ty::Logical("string", _) => json!("00000000-0000-0000-0000-000000000000"),
        Ty::Logical(_, _) => json!(0),
        Ty::Enum(_, symbols, _) => json!(symbols[0]),
        Ty::Array(_) => json!([]),
        Ty::Map(_) => json!({}),
        Ty::Union(branches) => default_for(&branches[0])?,
        Ty::Record(r) => {
            let mut m = Map::new();
            for f in &r.fields {
                m.insert(f.name.clone(), f.default.clone().or_else(|| default_for(&f.ty))?);
            }
            Value::Object(m)
        }
        Ty::Decimal(..) | Ty::Fixed(..) => return None,
    })
}

// ---------------------------------------------------------------------------
// Generation: random base records and mutations, from a seeded proptest RNG.

struct Gen {
    rng: TestRng,
    fresh: u32,
}

const PRIMS: [&str; 7] = ["int", "long", "float", "double", "string", "bytes", "boolean"];

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn fresh(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn prim(&mut self) -> Ty {
        Ty::Prim(PRIMS[self.below(PRIMS.len())])
    }

    fn simple_ty(&mut self) -> Ty {
        match self.below(12) {
            0 => Ty::Union(vec![Ty::Prim("null"), self.prim()]),
            1 => Ty::Enum(
                Named { name: self.fresh("E"), namespace: None, aliases: vec![] },
                vec!["A".into(), "B".into(), "C".into()],
                self.chance(50).then(|| "A".to_string()),
            ),
            2 => Ty::Fixed(Named { name: self.fresh("F"), namespace: None, aliases: vec![] }, 4 + 4 * self.below(2)),
            3 => Ty::Decimal(4 + self.below(6) as u32, self.below(3) as u32, None),
            4 => {
                let logical = [("int", "date"), ("long", "timestamp-millis"), ("string", "uuid")][self.below(3)];
                Ty::Logical(logical.0, logical.1)
            }
            5 => Ty::Array(Box::new(self.prim())),
            6 => Ty::Map(Box::new(self.prim())),
            _ => self.prim(),
        }
    }

    fn field(&mut self, ty: Ty, with_default: bool) -> Field {
        let default = if with_default { default_for(&ty) } else { None };
        Field { name: self.fresh("f"), ty, default, aliases: vec![], doc: None }
    }

    fn record(&mut self, name: &str, namespace: Option<&str>, depth: usize) -> Rec {
        let count = 2 + self.below(3);
        let mut fields = Vec::new();
        for _ in 0..count {
            let ty = if depth > 0 && self.chance(20) {
                let inner = Ty::Record(self.record(&format!("Inner{}", self.fresh + 1), None, depth - 1));
                match self.below(4) {
                    0 => Ty::Array(Box::new(inner)),
                    1 => Ty::Map(Box::new(inner)),
                    2 => Ty::Union(vec![Ty::Prim("null"), inner]),
                    _ => inner,
                }
            } else {
                self.simple_ty()
            };
            let with_default = self.chance(40);
            fields.push(self.field(ty, with_default));
        }
        Rec { n: Named { name: name.into(), namespace: namespace.map(str::to_string), aliases: vec![] }, fields }
    }

    /// Applies one random change somewhere in `r`; returns its label.
    fn mutate(&mut self, r: &mut Rec) -> String {
        // Descend into a nested record now and then.
        if self.chance(30) {
            let nested: Vec<usize> =
                (0..r.fields.len()).filter(|i| inner_record(&mut r.fields[*i].ty).is_some()).collect();
            if !nested.is_empty() {
                let i = nested[self.below(nested.len())];
                let name = r.fields[i].name.clone();
                let inner = inner_record(&mut r.fields[i].ty).expect("nested record");
                let label = format!("{name}.{}", self.mutate(inner));
                // Keep the field's default valid for the changed record.
                let f = &mut r.fields[i];
                f.default = f.default.as_ref().and_then(|_| default_for(&f.ty));
                return label;
            }
        }
        let i = self.below(r.fields.len());
        match self.below(17) {
            0 => {
                let ty = self.simple_ty();
                let f = self.field(ty, true);
                r.fields.push(f);
                "add field with default".into()
            }
            1 => {
                let ty = self.simple_ty();
                let f = self.field(ty, false);
                r.fields.push(f);
                "add field without default".into()
            }
            2 if r.fields.len() > 1 => {
                let f = r.fields.remove(i);
                format!("remove field {} default={}", f.name, f.default.is_some())
            }
            3 => promote(self, &mut r.fields[i]),
            4 => {
                let f = &mut r.fields[i];
                match &f.ty {
                    Ty::Union(b) if b.len() == 2 && matches!(b[0], Ty::Prim("null")) => {
                        f.ty = b[1].clone();
                        f.default = f.default.as_ref().and_then(|_| default_for(&f.ty));
                        "nullable unwrapped".into()
                    }
                    Ty::Union(_) => "union left alone".into(),
                    other => {
                        f.ty = Ty::Union(vec![Ty::Prim("null"), other.clone()]);
                        f.default = f.default.as_ref().map(|_| Value::Null);
                        "made nullable".into()
                    }
                }
            }
            5 => {
                let extra = self.prim();
                let f = &mut r.fields[i];
                match &mut f.ty {
                    Ty::Union(b) if b.len() > 2 => {
                        b.pop();
                        "union narrowed".into()
                    }
                    Ty::Union(b) => {
                        if !b.iter().any(|t| same_kind(t, &extra)) {
                            b.push(extra);
                        }
                        "union widened".into()
                    }
                    other => {
                        if !same_kind(other, &extra) {
                            f.ty = Ty::Union(vec![other.clone(), extra]);
                        }
                        "type widened to a union".into()
                    }
                }
            }
            6 | 7 => enum_change(self, &mut r.fields[i]),
            8 => {
                let alias = self.chance(50);
                let old = r.n.name.clone();
                r.n.name = self.fresh(&format!("{old}_v"));
                if alias {
                    r.n.aliases.push(old);
                }
                format!("record renamed alias={alias}")
            }
            9 => {
                r.n.namespace = Some(format!("ns{}.changed", self.below(3)));
                "namespace changed".into()
            }
            10 => {
                let alias = self.chance(50);
                let f = &mut r.fields[i];
                let old = f.name.clone();
                f.name = format!("{old}_renamed");
                if alias {
                    f.aliases.push(old);
                }
                format!("field renamed alias={alias}")
            }
            11 => fixed_or_decimal_change(self, &mut r.fields[i]),
            12 => {
                let f = &mut r.fields[i];
                f.default = match (&f.default, &f.ty) {
                    (Some(_), _) => None,
                    (None, ty) => default_for(ty),
                };
                "default added or removed".into()
            }
            13 => {
                let f = &mut r.fields[i];
                f.default = match &f.default {
                    Some(Value::Number(n)) if n.is_i64() => Some(json!(n.as_i64().unwrap_or(0) + 1)),
                    Some(Value::Number(_)) => Some(json!(1.5)),
                    Some(Value::String(s)) if !matches!(f.ty, Ty::Logical(..) | Ty::Enum(..)) => {
                        Some(json!(format!("{s}x")))
                    }
                    Some(Value::Bool(b)) => Some(json!(!b)),
                    other => other.clone(),
                };
                "default value changed".into()
            }
            14 => {
                let f = &mut r.fields[i];
                f.doc = Some(format!("{}!", f.doc.clone().unwrap_or_default()));
                "doc changed".into()
            }
            15 => {
                r.fields.rotate_left(1);
                "fields reordered".into()
            }
            _ => {
                let f = &mut r.fields[i];
                let (ty, label) = match &f.ty {
                    Ty::Prim(p @ ("int" | "long" | "string")) => {
                        let logical = match *p {
                            "int" => "date",
                            "long" => "timestamp-millis",
                            _ => "uuid",
                        };
                        (Ty::Logical(p, logical), "logical type added")
                    }
                    Ty::Logical(base, _) => (Ty::Prim(base), "logical type removed"),
                    Ty::Decimal(_, _, None) => (Ty::Prim("bytes"), "decimal to bytes"),
                    other => (Ty::Array(Box::new(other.clone())), "wrapped in an array"),
                };
                f.ty = ty;
                f.default = f.default.as_ref().and_then(|_| default_for(&f.ty));
                label.into()
            }
        }
    }
}

fn inner_record(ty: &mut Ty) -> Option<&mut Rec> {
    match ty {
        Ty::Record(r) => Some(r),
        Ty::Array(t) | Ty::Map(t) => inner_record(t),
        Ty::Union(b) => b.iter_mut().find_map(inner_record),
        _ => None,
    }
}

fn same_kind(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Prim(x), Ty::Prim(y)) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Promotions and their reverses (the spec's int->long->float->double, string<->bytes).
fn promote(g: &mut Gen, f: &mut Field) -> String {
    let Ty::Prim(p) = f.ty else {
        return "promotion skipped".into();
    };
    let options: &[&'static str] = match p {
        "int" => &["long", "float", "double", "string"],
        "long" => &["int", "float", "double"],
        "float" => &["double", "long", "int"],
        "double" => &["float", "long"],
        "string" => &["bytes", "int"],
        "bytes" => &["string"],
        _ => &["int"],
    };
    let to = options[g.below(options.len())];
    f.ty = Ty::Prim(to);
    f.default = f.default.as_ref().and_then(|_| default_for(&f.ty));
    format!("{p} to {to}")
}

fn enum_of(ty: &mut Ty) -> Option<(&mut Vec<String>, &mut Option<String>)> {
    match ty {
        Ty::Enum(_, symbols, default) => Some((symbols, default)),
        Ty::Array(t) | Ty::Map(t) => enum_of(t),
        Ty::Union(b) => b.iter_mut().find_map(enum_of),
        _ => None,
    }
}

fn enum_change(g: &mut Gen, f: &mut Field) -> String {
    let choice = g.below(4);
    let Some((symbols, default)) = enum_of(&mut f.ty) else {
        let ty = Ty::Enum(
            Named { name: g.fresh("E"), namespace: None, aliases: vec![] },
            vec!["A".into(), "B".into()],
            None,
        );
        f.ty = ty;
        f.default = f.default.as_ref().and_then(|_| default_for(&f.ty));
        return "changed to an enum".into();
    };
    match choice {
        0 => {
            symbols.push(format!("S{}", symbols.len()));
            format!("enum symbol added, enum default={}", default.is_some())
        }
        1 if symbols.len() > 2 => {
            // Never the first symbol: it is the field and enum default.
            symbols.pop();
            format!("enum symbol removed, enum default={}", default.is_some())
        }
        2 => {
            *default = match default {
                Some(_) => None,
                None => Some(symbols[0].clone()),
            };
            "enum default toggled".into()
        }
        _ => {
            symbols.insert(1, "INSERTED".into());
            format!("enum symbol inserted, enum default={}", default.is_some())
        }
    }
}

fn fixed_or_decimal_change(g: &mut Gen, f: &mut Field) -> String {
    match &mut f.ty {
        Ty::Fixed(n, size) => {
            if g.chance(50) {
                *size += 1;
                "fixed size changed".into()
            } else {
                let old = n.name.clone();
                n.name = format!("{old}_renamed");
                if g.chance(50) {
                    n.aliases.push(old);
                    "fixed renamed with alias".into()
                } else {
                    "fixed renamed".into()
                }
            }
        }
        Ty::Decimal(precision, scale, fixed) => match g.below(3) {
            0 => {
                *precision += 1 + g.below(4) as u32;
                "decimal precision changed".into()
            }
            1 => {
                *scale = (*scale + 1).min(*precision);
                "decimal scale changed".into()
            }
            _ => {
                *fixed = match fixed {
                    Some(_) => None,
                    None => Some((Named { name: g.fresh("D"), namespace: None, aliases: vec![] }, 16)),
                };
                "decimal bytes/fixed switched".into()
            }
        },
        other => {
            let ty = Ty::Decimal(6, 2, None);
            *other = ty;
            f.default = None;
            "changed to a decimal".into()
        }
    }
}

fn generated(count_pairs: usize, count_chains: usize) -> Vec<Case> {
    let mut g = Gen { rng: TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]), fresh: 0 };
    let mut cases = Vec::new();
    for n in 0..count_pairs + count_chains {
        let base = g.record("R", Some("io.test"), 1);
        let steps = if n < count_pairs { 1 + g.below(2) } else { 2 + g.below(3) };
        let mut schemas = vec![text(&base)];
        let mut labels = Vec::new();
        let mut current = base.clone();
        for _ in 0..steps {
            labels.push(g.mutate(&mut current));
            if n >= count_pairs {
                schemas.push(text(&current));
            }
        }
        if n < count_pairs {
            schemas.push(text(&current));
        }
        let kind = if n < count_pairs { "pair" } else { "chain" };
        cases.push(Case { label: format!("{kind} {n}: {}", labels.join(", ")), schemas });
        if n % 10 == 0 {
            // The same schema written another way is the same schema.
            cases.push(Case {
                label: format!("restyled {n}"),
                schemas: vec![text(&base), render_record(&base, Style::Verbose).to_string()],
            });
        }
    }
    cases
}

// ---------------------------------------------------------------------------
// Hand-written cases: the review's findings and known traps.

fn rec(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{fields}]}}"#)
}

fn table() -> Vec<Case> {
    let enum_t =
        |symbols: &str, default: &str| format!(r#"{{"type":"enum","name":"E","symbols":[{symbols}]{default}}}"#);
    let dec = |p: u32, s: u32| format!(r#"{{"type":"bytes","logicalType":"decimal","precision":{p},"scale":{s}}}"#);
    let fixed_dec = |size: u32, p: u32| {
        format!(r#"{{"type":"fixed","name":"D","size":{size},"logicalType":"decimal","precision":{p},"scale":2}}"#)
    };
    let inner = |fields: &str| format!(r#"{{"type":"record","name":"Inner","fields":[{fields}]}}"#);
    let pair = |label: &str, a: String, b: String| Case { label: label.into(), schemas: vec![a, b] };
    vec![
        pair("a: field without default removed", rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), rec(r#"{"name":"a","type":"int"}"#)),
        pair(
            "a: nested field without default removed",
            rec(&format!(r#"{{"name":"i","type":{}}}"#, inner(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#))),
            rec(&format!(r#"{{"name":"i","type":{}}}"#, inner(r#"{"name":"a","type":"int"}"#))),
        ),
        pair(
            "a: field without default removed in an array of records",
            rec(&format!(r#"{{"name":"i","type":{{"type":"array","items":{}}}}}"#, inner(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#))),
            rec(&format!(r#"{{"name":"i","type":{{"type":"array","items":{}}}}}"#, inner(r#"{"name":"a","type":"int"}"#))),
        ),
        pair(
            "a: field without default removed in a nullable record",
            rec(&format!(r#"{{"name":"i","type":["null",{}],"default":null}}"#, inner(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#))),
            rec(&format!(r#"{{"name":"i","type":["null",{}],"default":null}}"#, inner(r#"{"name":"a","type":"int"}"#))),
        ),
        pair("a: field with default removed", rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#), rec(r#"{"name":"a","type":"int"}"#)),
        pair("b: default removed", rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#), rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#)),
        pair("b: default value changed", rec(r#"{"name":"b","type":"int","default":0}"#), rec(r#"{"name":"b","type":"int","default":1}"#)),
        pair("b: enum default added", rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, ""))), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, r#","default":"A""#)))),
        pair("b: doc added", rec(r#"{"name":"b","type":"int"}"#), rec(r#"{"name":"b","type":"int","doc":"the b"}"#)),
        pair("b: explicit ascending order", rec(r#"{"name":"b","type":"int"}"#), rec(r#"{"name":"b","type":"int","order":"ascending"}"#)),
        pair("b: descending order", rec(r#"{"name":"b","type":"int"}"#), rec(r#"{"name":"b","type":"int","order":"descending"}"#)),
        pair("b: custom property", rec(r#"{"name":"b","type":"int"}"#), rec(r#"{"name":"b","type":"int","x-owner":"cms"}"#)),
        pair("b: 1 vs 1.0 as a double default", rec(r#"{"name":"b","type":"double","default":1}"#), rec(r#"{"name":"b","type":"double","default":1.0}"#)),
        pair(
            "b: full name vs namespace",
            r#"{"type":"record","name":"io.test.R","fields":[{"name":"a","type":"int"}]}"#.into(),
            rec(r#"{"name":"a","type":"int"}"#),
        ),
        pair("b: primitive written as an object", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":{"type":"int"}}"#)),
        pair(
            "b: alias written relative vs qualified",
            r#"{"type":"record","name":"R","namespace":"io.test","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}"#.into(),
            r#"{"type":"record","name":"R","namespace":"io.test","aliases":["io.test.Old"],"fields":[{"name":"a","type":"int"}]}"#.into(),
        ),
        Case {
            label: "b: required field slips in as a default-only change under BACKWARD_TRANSITIVE".into(),
            schemas: vec![
                rec(r#"{"name":"a","type":"int"}"#),
                rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#),
                rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#),
            ],
        },
        pair("c: writer adds an enum symbol, reader enum has a default", rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, r#","default":"A""#))), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B","C""#, r#","default":"A""#)))),
        pair("c: writer adds an enum symbol, only the new reader has a default", rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, ""))), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B","C""#, r#","default":"A""#)))),
        pair("c: writer adds an enum symbol, only the old reader has a default", rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, r#","default":"A""#))), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B","C""#, "")))),
        pair(
            "c: enum with default in an array",
            rec(&format!(r#"{{"name":"e","type":{{"type":"array","items":{}}}}}"#, enum_t(r#""A","B""#, r#","default":"A""#))),
            rec(&format!(r#"{{"name":"e","type":{{"type":"array","items":{}}}}}"#, enum_t(r#""A","B","C""#, r#","default":"A""#))),
        ),
        pair(
            "c: enum with default in a nullable union",
            rec(&format!(r#"{{"name":"e","type":["null",{}],"default":null}}"#, enum_t(r#""A","B""#, r#","default":"B""#))),
            rec(&format!(r#"{{"name":"e","type":["null",{}],"default":null}}"#, enum_t(r#""A","B","C""#, r#","default":"B""#))),
        ),
        pair("c: enum symbol removed, enum default", rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B","C""#, r#","default":"A""#))), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, r#","default":"A""#)))),
        pair("d: decimal precision changed", rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(6, 2))), rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(10, 2)))),
        pair("d: decimal scale changed", rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(6, 2))), rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(6, 3)))),
        pair("d: decimal to bytes", rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(6, 2))), rec(r#"{"name":"d","type":"bytes"}"#)),
        pair("d: decimal to string", rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(6, 2))), rec(r#"{"name":"d","type":"string"}"#)),
        pair("d: fixed decimal precision changed", rec(&format!(r#"{{"name":"d","type":{}}}"#, fixed_dec(8, 10))), rec(&format!(r#"{{"name":"d","type":{}}}"#, fixed_dec(8, 12)))),
        pair("d: fixed decimal size changed", rec(&format!(r#"{{"name":"d","type":{}}}"#, fixed_dec(8, 10))), rec(&format!(r#"{{"name":"d","type":{}}}"#, fixed_dec(9, 10)))),
        pair("d: bytes decimal to fixed decimal", rec(&format!(r#"{{"name":"d","type":{}}}"#, dec(10, 2))), rec(&format!(r#"{{"name":"d","type":{}}}"#, fixed_dec(8, 10)))),
        pair("logical: date to int", rec(r#"{"name":"d","type":{"type":"int","logicalType":"date"}}"#), rec(r#"{"name":"d","type":"int"}"#)),
        pair("logical: date to long", rec(r#"{"name":"d","type":{"type":"int","logicalType":"date"}}"#), rec(r#"{"name":"d","type":"long"}"#)),
        pair("logical: timestamp-millis to timestamp-micros", rec(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}"#), rec(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}"#)),
        pair("logical: uuid to string", rec(r#"{"name":"u","type":{"type":"string","logicalType":"uuid"}}"#), rec(r#"{"name":"u","type":"string"}"#)),
        pair("promotion: int to double", rec(r#"{"name":"n","type":"int"}"#), rec(r#"{"name":"n","type":"double"}"#)),
        pair("promotion: long to float", rec(r#"{"name":"n","type":"long"}"#), rec(r#"{"name":"n","type":"float"}"#)),
        pair("promotion: string to bytes", rec(r#"{"name":"n","type":"string"}"#), rec(r#"{"name":"n","type":"bytes"}"#)),
        pair("union: writer union into a reader union of promotions", rec(r#"{"name":"n","type":["int","string"]}"#), rec(r#"{"name":"n","type":["long","bytes"]}"#)),
        pair("union: null-first to null-last", rec(r#"{"name":"n","type":["null","int"],"default":null}"#), rec(r#"{"name":"n","type":["int","null"],"default":0}"#)),
        pair("record renamed with an alias", r#"{"type":"record","name":"Old","namespace":"io.test","fields":[{"name":"a","type":"int"}]}"#.into(), r#"{"type":"record","name":"New","namespace":"io.test","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}"#.into()),
        pair("record renamed with an alias in another namespace", r#"{"type":"record","name":"Old","namespace":"a.b","fields":[{"name":"a","type":"int"}]}"#.into(), r#"{"type":"record","name":"New","namespace":"c.d","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}"#.into()),
        pair("record renamed with a qualified alias", r#"{"type":"record","name":"Old","namespace":"a.b","fields":[{"name":"a","type":"int"}]}"#.into(), r#"{"type":"record","name":"New","namespace":"c.d","aliases":["a.b.Old"],"fields":[{"name":"a","type":"int"}]}"#.into()),
        pair("namespace-only change", r#"{"type":"record","name":"R","namespace":"a.b","fields":[{"name":"a","type":"int"}]}"#.into(), r#"{"type":"record","name":"R","namespace":"c.d","fields":[{"name":"a","type":"int"}]}"#.into()),
        pair(
            "recursive record",
            r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}"#.into(),
            r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}"#.into(),
        ),
        pair("fixed size changed", rec(r#"{"name":"f","type":{"type":"fixed","name":"F","size":4}}"#), rec(r#"{"name":"f","type":{"type":"fixed","name":"F","size":8}}"#)),
        pair("invalid default: a string for an int", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":"x"}"#)),
        pair("invalid default: null for a non-null union first branch", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":"int"},{"name":"b","type":["int","null"],"default":null}"#)),
        pair("invalid: decimal beside bytes in a union", rec(r#"{"name":"a","type":"int"}"#), rec(&format!(r#"{{"name":"a","type":"int"}},{{"name":"b","type":[{},"bytes"]}}"#, dec(4, 2)))),
        pair("invalid: enum default not a symbol", rec(r#"{"name":"a","type":"int"}"#), rec(&format!(r#"{{"name":"e","type":{}}}"#, enum_t(r#""A","B""#, r#","default":"Z""#)))),
        pair("map values promoted", rec(r#"{"name":"m","type":{"type":"map","values":"int"}}"#), rec(r#"{"name":"m","type":{"type":"map","values":"long"}}"#)),
        pair("array to map", rec(r#"{"name":"m","type":{"type":"array","items":"int"}}"#), rec(r#"{"name":"m","type":{"type":"map","values":"int"}}"#)),
    ]
}

// ---------------------------------------------------------------------------

fn ours(schemas: &[String]) -> Result<(BTreeMap<&'static str, bool>, Vec<String>), String> {
    let parsed: Vec<Schema> =
        schemas.iter().map(|s| Schema::parse_str(s).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    let identities: Vec<String> = schemas.iter().map(|s| sluice_registry::identity(s)).collect::<Result<_, _>>()?;
    let (candidate, previous) = parsed.split_last().ok_or("no schema")?;
    let live: Vec<(u32, &Schema)> = previous.iter().enumerate().map(|(i, s)| (i as u32 + 1, s)).collect();
    let verdicts = LEVELS.iter().map(|(level, name)| (*name, level.check(candidate, &live).is_empty())).collect();
    Ok((verdicts, identities))
}

#[test]
fn our_checker_agrees_with_confluents_on_every_case_and_level() {
    let started = std::time::Instant::now();
    let mut cases = table();
    cases.extend(generated(300, 100));
    let answers = run_oracle(&cases);
    let mut disagreements = Vec::new();
    let mut documented = Vec::new();
    let (mut verdicts, mut identity_pairs, mut refused) = (0, 0, 0);
    let mut compatible = BTreeMap::<String, usize>::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let known = DOCUMENTED_DIFFERENCES.iter().find(|(label, _)| case.label == *label);
        let mut problems = Vec::new();
        match (answer, ours(&case.schemas)) {
            (Verdict::Error(_), Err(_)) => refused += 1,
            (Verdict::Error(e), Ok(_)) => problems.push(format!("Confluent cannot parse it ({e}), we can")),
            (Verdict::Judged { .. }, Err(e)) => problems.push(format!("we cannot parse it ({e}), Confluent can")),
            (Verdict::Judged { levels, canonical }, Ok((mine, identities))) => {
                for (level, theirs) in levels {
                    verdicts += 1;
                    *compatible.entry(level.clone()).or_insert(0) += usize::from(*theirs);
                    if mine.get(level.as_str()) != Some(theirs) {
                        problems
                            .push(format!("{level}: Confluent says {theirs}, we say {:?}", mine.get(level.as_str())));
                    }
                }
                for i in 0..canonical.len() {
                    for j in i + 1..canonical.len() {
                        identity_pairs += 1;
                        let (theirs, mine) = (canonical[i] == canonical[j], identities[i] == identities[j]);
                        if theirs != mine {
                            problems.push(format!(
                                "schemas {} and {}: Confluent says same schema = {theirs}, we say {mine}",
                                i + 1,
                                j + 1
                            ));
                        }
                    }
                }
            }
        }
        match (problems.is_empty(), known) {
            (true, Some((label, _))) => {
                disagreements.push(format!("documented difference `{label}` no longer differs: remove it"))
            }
            (true, None) => {}
            (false, Some((label, why))) => documented.push(format!("{label}: {why}")),
            (false, None) => disagreements.push(format!(
                "{}\n    {}\n    schemas:\n      {}",
                case.label,
                problems.join("\n    "),
                case.schemas.join("\n      ")
            )),
        }
    }
    println!(
        "{} cases ({} table), {verdicts} level verdicts and {identity_pairs} identity pairs compared with Confluent, {refused} invalid schemas refused by both, in {:.1?}; compatible per level (Confluent): {compatible:?}; documented differences: {documented:?}",
        cases.len(),
        table().len(),
        started.elapsed()
    );
    assert!(cases.len() >= 400, "too few cases: {}", cases.len());
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree with Confluent:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}
