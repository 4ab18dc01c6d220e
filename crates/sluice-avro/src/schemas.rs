//! The `schemas/<aggregate>/vN.avsc` tree.

use crate::AvroError;
use apache_avro::Schema;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SchemaFile {
    pub aggregate: String,
    pub version: u32,
    pub path: PathBuf,
    /// The file's text, as registered.
    pub text: String,
    pub schema: Schema,
}

/// Every schema version of every aggregate, ordered by version.
#[derive(Debug, Clone, Default)]
pub struct SchemaSet {
    by_aggregate: BTreeMap<String, Vec<SchemaFile>>,
}

impl SchemaSet {
    pub fn load(dir: &Path) -> Result<Self, AvroError> {
        let err = |path: &Path, reason: String| AvroError::SchemaFile { path: path.display().to_string(), reason };
        let mut set = SchemaSet::default();
        let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e.to_string()))?;
        for entry in entries {
            let folder = entry.map_err(|e| err(dir, e.to_string()))?.path();
            if !folder.is_dir() {
                continue;
            }
            let aggregate = folder
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| err(&folder, "folder name is not UTF-8".into()))?
                .to_string();
            let mut versions = Vec::new();
            for file in std::fs::read_dir(&folder).map_err(|e| err(&folder, e.to_string()))? {
                let path = file.map_err(|e| err(&folder, e.to_string()))?.path();
                let Some(version) = parse_version(&path) else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
                let schema = Schema::parse_str(&text).map_err(|e| err(&path, e.to_string()))?;
                versions.push(SchemaFile { aggregate: aggregate.clone(), version, path, text, schema });
            }
            versions.sort_by_key(|f| f.version);
            for (expected, file) in (1..).zip(&versions) {
                if file.version != expected {
                    return Err(err(
                        &file.path,
                        format!("versions must be v1, v2, ... without gaps; expected v{expected}"),
                    ));
                }
            }
            if !versions.is_empty() {
                set.by_aggregate.insert(aggregate, versions);
            }
        }
        Ok(set)
    }

    /// The newest schema of an aggregate: what writers use.
    pub fn latest(&self, aggregate: &str) -> Option<&SchemaFile> {
        self.by_aggregate.get(aggregate).and_then(|v| v.last())
    }

    pub fn versions(&self, aggregate: &str) -> &[SchemaFile] {
        self.by_aggregate.get(aggregate).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn aggregates(&self) -> impl Iterator<Item = &str> {
        self.by_aggregate.keys().map(String::as_str)
    }
}

fn parse_version(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix('v')?.strip_suffix(".avsc")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_versions_in_order_and_rejects_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agg = dir.path().join("thing");
        std::fs::create_dir(&agg).expect("mkdir");
        let schema =
            |n: &str| format!(r#"{{"type":"record","name":"Thing","fields":[{{"name":"{n}","type":"string"}}]}}"#);
        std::fs::write(agg.join("v2.avsc"), schema("b")).expect("write");
        std::fs::write(agg.join("v1.avsc"), schema("a")).expect("write");
        std::fs::write(agg.join("README.md"), "ignored").expect("write");
        let set = SchemaSet::load(dir.path()).expect("load");
        assert_eq!(set.versions("thing").len(), 2);
        assert_eq!(set.latest("thing").expect("latest").version, 2);

        std::fs::write(agg.join("v4.avsc"), schema("d")).expect("write");
        assert!(SchemaSet::load(dir.path()).is_err());
    }

    #[test]
    fn the_repository_schemas_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let set = SchemaSet::load(&dir).expect("schemas/ loads");
        assert!(set.latest("article").is_some());
    }
}
