//! The values and rows the store writes: what the endpoint mappers produce and
//! the generic upsert binds.

use super::tables::TableDef;

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
