use apache_avro::Schema;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, PartialEq, Eq)]
pub enum RegisterError {
    InvalidSchema(String),
}

/// Schemas by global id and subjects as lists of schema ids (version = index + 1).
#[derive(Default)]
pub struct SchemaStore {
    schemas: Vec<String>,
    by_canonical: HashMap<String, u32>,
    subjects: BTreeMap<String, Vec<u32>>,
}

pub struct SubjectVersion<'a> {
    pub subject: &'a str,
    pub version: u32,
    pub id: u32,
    pub schema: &'a str,
}

impl SchemaStore {
    /// Registers `schema` under `subject`: the same schema keeps its global id
    /// everywhere and is not added twice to one subject. Returns the id.
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegisterError> {
        let canonical = canonical(schema)?;
        let id = match self.by_canonical.get(&canonical) {
            Some(id) => *id,
            None => {
                self.schemas.push(schema.to_string());
                let id = u32::try_from(self.schemas.len()).unwrap_or(u32::MAX);
                self.by_canonical.insert(canonical, id);
                id
            }
        };
        let versions = self.subjects.entry(subject.to_string()).or_default();
        if !versions.contains(&id) {
            versions.push(id);
        }
        Ok(id)
    }

    /// The version of `subject` holding `schema`, if registered there.
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<Option<SubjectVersion<'_>>, RegisterError> {
        let canonical = canonical(schema)?;
        let Some(id) = self.by_canonical.get(&canonical) else {
            return Ok(None);
        };
        Ok(self
            .subject_versions(subject)
            .iter()
            .position(|v| v == id)
            .and_then(|i| self.version(subject, i as u32 + 1)))
    }

    pub fn schema(&self, id: u32) -> Option<&str> {
        self.schemas.get(id.checked_sub(1)? as usize).map(String::as_str)
    }

    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.subjects.keys().map(String::as_str)
    }

    pub fn subject_versions(&self, subject: &str) -> &[u32] {
        self.subjects.get(subject).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has_subject(&self, subject: &str) -> bool {
        self.subjects.contains_key(subject)
    }

    pub fn version(&self, subject: &str, version: u32) -> Option<SubjectVersion<'_>> {
        let (subject, ids) = self.subjects.get_key_value(subject)?;
        let id = *ids.get(version.checked_sub(1)? as usize)?;
        Some(SubjectVersion { subject, version, id, schema: self.schema(id)? })
    }

    pub fn latest(&self, subject: &str) -> Option<SubjectVersion<'_>> {
        let n = self.subject_versions(subject).len() as u32;
        self.version(subject, n)
    }
}

fn canonical(schema: &str) -> Result<String, RegisterError> {
    Schema::parse_str(schema).map(|s| s.canonical_form()).map_err(|e| RegisterError::InvalidSchema(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
    const A_SPACED: &str = r#"{ "type": "record", "name": "A", "fields": [ {"name": "x", "type": "int"} ] }"#;
    const B: &str = r#"{"type":"record","name":"B","fields":[{"name":"y","type":"string"}]}"#;

    #[test]
    fn same_schema_same_id_across_subjects_and_no_duplicate_versions() {
        let mut store = SchemaStore::default();
        let a = store.register("s1", A).expect("valid");
        assert_eq!(store.register("s1", A_SPACED), Ok(a));
        assert_eq!(store.subject_versions("s1"), &[a]);
        assert_eq!(store.register("s2", A), Ok(a));
        let b = store.register("s1", B).expect("valid");
        assert_ne!(a, b);
        assert_eq!(store.latest("s1").map(|v| (v.version, v.id)), Some((2, b)));
        assert_eq!(store.lookup("s1", B).expect("valid").map(|v| v.version), Some(2));
        assert!(store.lookup("s2", B).expect("valid").is_none());
        assert!(matches!(store.register("s1", "{not json"), Err(RegisterError::InvalidSchema(_))));
    }
}
