//! The values and rows the store writes: what the endpoint mappers produce and
//! the generic upsert binds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::tables::{Merge, TableDef};

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<Option<i64>> for SqlValue {
    fn from(v: Option<i64>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Int)
    }
}

impl From<Option<f64>> for SqlValue {
    fn from(v: Option<f64>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Real)
    }
}

impl From<Option<String>> for SqlValue {
    fn from(v: Option<String>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Text)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}

/// One row for one table: a value for every column, in `TableDef::all_columns` order.
#[derive(Debug, Clone)]
pub struct Row {
    pub table: &'static TableDef,
    pub values: Vec<SqlValue>,
}

impl Row {
    /// A row of NULLs for `table`, with `appid` set.
    pub fn new(table: &'static TableDef, appid: &str) -> Row {
        let mut row = Row {
            table,
            values: vec![SqlValue::Null; table.width()],
        };
        row.set("appid", appid);
        row
    }

    /// Sets one column. Panics on a column the table does not have: that is a
    /// bug in a mapper, caught by the tests, never a property of the input.
    pub fn set(&mut self, column: &str, value: impl Into<SqlValue>) -> &mut Row {
        let pos = self
            .table
            .position(column)
            .unwrap_or_else(|| panic!("table {} has no column {column}", self.table.name));
        self.values[pos] = value.into();
        self
    }

    /// Reads one column (for tests and summaries).
    pub fn get(&self, column: &str) -> Option<&SqlValue> {
        self.table.position(column).map(|p| &self.values[p])
    }
}

/// The rows of each table, tables in order of first appearance, rows with
/// equal keys merged into one as applying them in order would (the latest
/// row for `Merge::Replace`, the latest non-null value of each column for
/// `Merge::KeepNonNull`). One statement may then carry them all: PostgreSQL
/// refuses an upsert that touches the same row twice. The same article, for
/// example, appears on every day of a getarticlesummary chunk.
pub(crate) fn group_by_table(rows: &[Row]) -> Vec<(&'static TableDef, Vec<Cow<'_, Row>>)> {
    // Per table: its rows, and the positions of its rows by key hash.
    type Group<'r> = (
        &'static TableDef,
        Vec<Cow<'r, Row>>,
        HashMap<u64, Vec<usize>>,
    );
    let mut groups: Vec<Group<'_>> = Vec::new();
    for row in rows {
        let index = match groups
            .iter()
            .position(|(t, _, _)| std::ptr::eq(*t, row.table))
        {
            Some(i) => i,
            None => {
                groups.push((row.table, Vec::new(), HashMap::new()));
                groups.len() - 1
            }
        };
        let (table, group, seen) = &mut groups[index];
        let keys = &row.values[..table.keys.len()];
        let slots = seen.entry(key_hash(keys)).or_default();
        match slots
            .iter()
            .copied()
            .find(|&i| group[i].values[..keys.len()] == *keys)
        {
            Some(i) => match table.merge {
                Merge::Replace => group[i] = Cow::Borrowed(row),
                Merge::KeepNonNull => {
                    let merged = group[i].to_mut();
                    for (old, new) in merged.values.iter_mut().zip(&row.values) {
                        if *new != SqlValue::Null {
                            old.clone_from(new);
                        }
                    }
                }
            },
            None => {
                slots.push(group.len());
                group.push(Cow::Borrowed(row));
            }
        }
    }
    groups.into_iter().map(|(t, g, _)| (t, g)).collect()
}

/// A hash of key values (keys are integers, text or NULL; reals hash by bits).
fn key_hash(keys: &[SqlValue]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for value in keys {
        match value {
            SqlValue::Null => 0u8.hash(&mut hasher),
            SqlValue::Int(v) => (1u8, v).hash(&mut hasher),
            SqlValue::Real(v) => (2u8, v.to_bits()).hash(&mut hasher),
            SqlValue::Text(v) => (3u8, v).hash(&mut hasher),
        }
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::{ALL_TABLES, Merge};

    fn table(merge: Merge) -> &'static TableDef {
        ALL_TABLES
            .iter()
            .copied()
            .find(|t| t.merge == merge && t.columns.len() >= 2)
            .expect("a table of each merge kind")
    }

    #[test]
    fn rows_with_equal_keys_merge_as_applying_them_in_order_would() {
        for merge in [Merge::Replace, Merge::KeepNonNull] {
            let t = table(merge);
            let (a, b) = (t.columns[0], t.columns[1]);
            let mut first = Row::new(t, "wx1");
            for k in &t.keys[1..] {
                first.set(k, 7);
            }
            let mut second = first.clone();
            first.set(a, 1).set(b, 2);
            second.set(b, 3);
            let mut other = first.clone();
            other.set(t.keys[0], "wx2");
            let rows = [first, other, second];
            let groups = group_by_table(&rows);
            assert_eq!(groups.len(), 1);
            let merged = &groups[0].1;
            assert_eq!(merged.len(), 2, "{}: two distinct keys", t.name);
            let expected_a = match merge {
                Merge::Replace => SqlValue::Null,
                Merge::KeepNonNull => SqlValue::Int(1),
            };
            assert_eq!(merged[0].get(a), Some(&expected_a), "{}", t.name);
            assert_eq!(merged[0].get(b), Some(&SqlValue::Int(3)), "{}", t.name);
            assert_eq!(merged[1].get(b), Some(&SqlValue::Int(2)), "{}", t.name);
        }
    }
}
