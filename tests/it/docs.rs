//! The project's own documentation agrees with the code: `docs/schema.md`
//! lists exactly the tables, views, columns and keys the migrations create,
//! and the README's troubleshooting table exactly the errcodes of `ERRCODES`.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row as _;
use wxcube::store::Store;

use crate::helpers::SqlitePoolOf;
use wxcube::wechat::errors::ERRCODES;

/// A file of the repository, read relative to the crate root.
fn repo_file(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// One table or view as a document (or the database) describes it.
#[derive(Debug, Default, PartialEq)]
struct Described {
    /// Column names in order, each with its type cell (or declared type).
    columns: Vec<(String, String)>,
    /// Primary key columns in key order (tables only).
    key: Option<Vec<String>>,
}

/// What `docs/schema.md` says: tables and views by name.
#[derive(Debug, Default)]
struct SchemaDoc {
    tables: BTreeMap<String, Described>,
    views: BTreeMap<String, Described>,
}

/// The text between the first pair of backticks of `s`, if `s` is exactly
/// one backticked word.
fn backticked(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.is_empty() && !inner.contains('`')).then_some(inner)
}

/// The cells of a markdown table row (`| a | b |` gives `["a", "b"]`).
fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// Parses `docs/schema.md`: `### `name`` headings (under `## Views` for
/// views), a `Key: `a`, `b`.` line, and the column table whose first cells are
/// backticked column names. Malformed lines are reported in `problems`.
fn parse_schema_doc(text: &str, problems: &mut Vec<String>) -> SchemaDoc {
    let mut doc = SchemaDoc::default();
    let mut in_views = false;
    let mut current: Option<(bool, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if let Some(section) = line.strip_prefix("## ") {
            in_views = section.trim() == "Views";
            current = None;
            continue;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            let Some(name) = backticked(heading.trim_end()) else {
                problems.push(format!(
                    "docs/schema.md:{number}: heading {line:?} is not of the form \"### `name`\""
                ));
                current = None;
                continue;
            };
            let map = if in_views {
                &mut doc.views
            } else {
                &mut doc.tables
            };
            if map.insert(name.to_string(), Described::default()).is_some() {
                problems.push(format!(
                    "docs/schema.md:{number}: `{name}` is described twice"
                ));
            }
            current = Some((in_views, name.to_string()));
            continue;
        }
        let Some((is_view, name)) = &current else {
            continue;
        };
        let entry = if *is_view {
            doc.views.get_mut(name)
        } else {
            doc.tables.get_mut(name)
        }
        .expect("the current heading was inserted");
        if let Some(key) = line.strip_prefix("Key: ") {
            let key: Option<Vec<String>> = key
                .trim_end()
                .trim_end_matches('.')
                .split(',')
                .map(|part| backticked(part.trim()).map(str::to_string))
                .collect();
            match key {
                Some(key) if entry.key.is_none() => entry.key = Some(key),
                Some(_) => problems.push(format!(
                    "docs/schema.md:{number}: `{name}` has a second Key line"
                )),
                None => problems.push(format!(
                    "docs/schema.md:{number}: Key line {line:?} is not a list of backticked columns"
                )),
            }
            continue;
        }
        if line.starts_with('|') {
            let row = cells(line);
            let Some(column) = backticked(row[0]) else {
                // The header and separator rows.
                continue;
            };
            if entry.columns.iter().any(|(c, _)| c == column) {
                problems.push(format!(
                    "docs/schema.md:{number}: `{name}.{column}` is listed twice"
                ));
            }
            let ty = row.get(1).copied().unwrap_or_default().to_string();
            entry.columns.push((column.to_string(), ty));
        }
    }
    doc
}

/// The names of the objects of one type (`table` or `view`) that are
/// wxcube's own (not SQLite's or sqlx's bookkeeping).
async fn object_names(store: &Store, kind: &str) -> Vec<String> {
    sqlx::query(
        r"SELECT name FROM sqlite_master WHERE type = ?
            AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
            AND name NOT LIKE '\_sqlx%' ESCAPE '\'
          ORDER BY name",
    )
    .bind(kind)
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

/// A table or view as the database has it: columns with their declared type
/// (`TYPE` or `TYPE NOT NULL`) and, for tables, the primary key in key order.
async fn described_by_database(store: &Store, name: &str, is_table: bool) -> Described {
    let rows =
        sqlx::query(r#"SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid"#)
            .bind(name)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut columns = Vec::new();
    let mut key = Vec::new();
    for row in &rows {
        let column: String = row.get(0);
        let mut ty: String = row.get(1);
        if row.get::<i64, _>(2) != 0 {
            ty.push_str(" NOT NULL");
        }
        let pk: i64 = row.get(3);
        if pk > 0 {
            key.push((pk, column.clone()));
        }
        columns.push((column, ty));
    }
    key.sort();
    Described {
        columns,
        key: is_table.then(|| key.into_iter().map(|(_, c)| c).collect()),
    }
}

/// Compares one kind of object (tables or views) both ways and appends
/// every difference to `problems`.
fn compare(
    kind: &str,
    database: &BTreeMap<String, Described>,
    documented: &BTreeMap<String, Described>,
    check_types: bool,
    problems: &mut Vec<String>,
) {
    for name in database.keys().filter(|n| !documented.contains_key(*n)) {
        problems.push(format!(
            "{kind} `{name}` is created by the migrations but missing from docs/schema.md"
        ));
    }
    for name in documented.keys().filter(|n| !database.contains_key(*n)) {
        problems.push(format!(
            "{kind} `{name}` is in docs/schema.md but the migrations do not create it"
        ));
    }
    for (name, db) in database {
        let Some(doc) = documented.get(name) else {
            continue;
        };
        let db_columns: BTreeSet<&str> = db.columns.iter().map(|(c, _)| c.as_str()).collect();
        let doc_columns: BTreeSet<&str> = doc.columns.iter().map(|(c, _)| c.as_str()).collect();
        for column in db_columns.difference(&doc_columns) {
            problems.push(format!(
                "{kind} `{name}`: column `{column}` exists but is missing from docs/schema.md"
            ));
        }
        for column in doc_columns.difference(&db_columns) {
            problems.push(format!(
                "{kind} `{name}`: column `{column}` is in docs/schema.md but does not exist"
            ));
        }
        if check_types {
            for (column, ty) in &db.columns {
                if let Some((_, doc_ty)) = doc.columns.iter().find(|(c, _)| c == column)
                    && doc_ty != ty
                {
                    problems.push(format!(
                        "{kind} `{name}`: column `{column}` is {ty:?} but docs/schema.md says {doc_ty:?}"
                    ));
                }
            }
        }
        match (&db.key, &doc.key) {
            (Some(db_key), Some(doc_key)) if db_key != doc_key => problems.push(format!(
                "{kind} `{name}`: the key is {db_key:?} but docs/schema.md says {doc_key:?}"
            )),
            (Some(db_key), None) if !db_key.is_empty() => problems.push(format!(
                "{kind} `{name}`: docs/schema.md has no `Key:` line (the key is {db_key:?})"
            )),
            (None, Some(doc_key)) => problems.push(format!(
                "{kind} `{name}`: docs/schema.md gives a key {doc_key:?}, but views have none"
            )),
            _ => {}
        }
    }
}

#[tokio::test]
async fn schema_doc_lists_exactly_the_tables_views_and_columns_of_the_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();

    let mut tables = BTreeMap::new();
    for name in object_names(&store, "table").await {
        let described = described_by_database(&store, &name, true).await;
        tables.insert(name, described);
    }
    let mut views = BTreeMap::new();
    for name in object_names(&store, "view").await {
        let described = described_by_database(&store, &name, false).await;
        views.insert(name, described);
    }
    store.close().await;
    // A guard against a query that silently finds nothing.
    assert!(tables.contains_key("articles") && tables.contains_key("fetches"));
    assert!(views.contains_key("v_reads_by_channel"));

    let mut problems = Vec::new();
    let doc = parse_schema_doc(&repo_file("docs/schema.md"), &mut problems);
    compare("table", &tables, &doc.tables, true, &mut problems);
    compare("view", &views, &doc.views, false, &mut problems);
    assert!(
        problems.is_empty(),
        "docs/schema.md disagrees with the migrations:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn schema_doc_parser_reads_headings_keys_and_columns() {
    let text = "\
## Tables
### `t`

Key: `a`, `b`.

| column | type | from | notes |
| --- | --- | --- | --- |
| `a` | TEXT NOT NULL | x | key |
| `b` | INTEGER | y | `z` |
### Not a name
## Views
### `v`
| `c` | REAL | t | |
";
    let mut problems = Vec::new();
    let doc = parse_schema_doc(text, &mut problems);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("Not a name"), "{problems:?}");
    let t = &doc.tables["t"];
    assert_eq!(t.key, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(
        t.columns,
        vec![
            ("a".to_string(), "TEXT NOT NULL".to_string()),
            ("b".to_string(), "INTEGER".to_string())
        ]
    );
    assert_eq!(doc.views["v"].columns, vec![("c".into(), "REAL".into())]);
    assert!(!doc.tables.contains_key("v"));
}

/// The codes of the README's troubleshooting errcode table
/// (`| errcode | meaning | what wxcube does |` under `## Troubleshooting`):
/// every integer of each first cell (cells list codes separated by commas,
/// beside words such as "HTTP 5xx"). Malformed cells go to `problems`.
fn readme_errcodes(readme: &str, problems: &mut Vec<String>) -> BTreeSet<i64> {
    let section = readme
        .split_once("\n## Troubleshooting\n")
        .map(|(_, rest)| rest)
        .expect("README.md has a `## Troubleshooting` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut lines = section
        .lines()
        .skip_while(|l| cells(l) != ["errcode", "meaning", "what wxcube does"]);
    assert!(
        lines.next().is_some(),
        "README.md's Troubleshooting has no `| errcode | meaning | what wxcube does |` table"
    );
    let mut codes = BTreeSet::new();
    for line in lines.take_while(|l| l.starts_with('|')) {
        let first = cells(line)[0];
        if first.chars().all(|c| c == '-' || c == ' ') {
            continue; // the separator row
        }
        for part in first.split(',').map(str::trim) {
            match part.parse::<i64>() {
                Ok(code) => {
                    if !codes.insert(code) {
                        problems.push(format!("README.md lists errcode {code} twice"));
                    }
                }
                // Words beside the codes ("HTTP 5xx", "timeouts"); anything that
                // starts like a number but is not one is a typo.
                Err(_) if part.starts_with(|c: char| c.is_ascii_digit() || c == '-') => problems
                    .push(format!(
                        "README.md errcode cell {first:?}: {part:?} is not an integer"
                    )),
                Err(_) => {}
            }
        }
    }
    codes
}

#[test]
fn readme_errcode_table_lists_exactly_the_errcodes_wxcube_knows() {
    let mut problems = Vec::new();
    let readme = readme_errcodes(&repo_file("README.md"), &mut problems);
    let known: BTreeSet<i64> = ERRCODES.iter().map(|e| e.code).collect();
    assert!(!known.is_empty(), "ERRCODES is empty");
    for info in ERRCODES.iter().filter(|e| !readme.contains(&e.code)) {
        problems.push(format!(
            "errcode {} ({}) is in ERRCODES but missing from README.md's troubleshooting table",
            info.code, info.meaning
        ));
    }
    for code in readme.difference(&known) {
        problems.push(format!(
            "errcode {code} is in README.md's troubleshooting table but not in ERRCODES (src/wechat/errors.rs)"
        ));
    }
    assert!(
        problems.is_empty(),
        "README.md's errcode table disagrees with ERRCODES:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn readme_errcode_parser_reads_lists_and_skips_words() {
    let text = "\
# x
## Troubleshooting

| errcode | meaning | what wxcube does |
| --- | --- | --- |
| -1, HTTP 5xx, timeouts, truncated bodies | busy | retries |
| 40001, 40014 | token | refresh |
| 4500l | typo | |

| other | table |
| 99 | no |
## Development
| 77 | no |
";
    let mut problems = Vec::new();
    let codes = readme_errcodes(text, &mut problems);
    assert_eq!(codes, BTreeSet::from([-1, 40001, 40014]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("4500l"), "{problems:?}");
}

/// The docs name every endpoint wxcube declares: a new declaration without
/// its documentation fails here.
#[test]
fn the_docs_and_the_example_configuration_name_every_endpoint() {
    let api = repo_file("docs/wechat-api.md");
    let readme = repo_file("README.md");
    let example = repo_file("config/wxcube.example.toml");
    for endpoint in wxcube::endpoint::Endpoint::ALL {
        let name = endpoint.name();
        assert!(
            api.contains(name),
            "docs/wechat-api.md does not describe {name}"
        );
        assert!(readme.contains(name), "README.md does not mention {name}");
        assert!(
            example.contains(&format!("\"{name}\"")),
            "config/wxcube.example.toml does not list {name}"
        );
    }
}
