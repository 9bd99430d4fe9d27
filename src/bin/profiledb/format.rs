//! Printing a statement's output as an aligned table, CSV or JSON Lines.
//!
//! Rows go to `out`. In CSV and JSON modes a statement that returns no rows
//! prints its summary (`INSERT 2`) to `info`, so that `out` carries only rows.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use profiledb::{Output, Rows, Type, Value};

use crate::json::{JsonRow, JsonValue};

/// How the shell prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table, with a row count.
    Table,
    /// A header row of column names, then one line per row.
    Csv,
    /// One JSON object per row, keyed by column name.
    Json,
}

/// Prints one statement's output.
pub fn print(
    output: &Output,
    format: Format,
    out: &mut dyn Write,
    info: &mut dyn Write,
) -> io::Result<()> {
    match output {
        Output::Done { summary, .. } => match format {
            Format::Table => writeln!(out, "{summary}"),
            Format::Csv | Format::Json => writeln!(info, "{summary}"),
        },
        Output::Rows(rows) => match format {
            Format::Table => table(rows, out),
            Format::Csv => csv(rows, out),
            Format::Json => json_lines(rows, out),
        },
    }
}

/// A value as text: floats in their shortest round-trip form (always with a
/// decimal point or exponent), tags and vectors as JSON arrays. NULL is `null`.
pub fn text(v: &Value, null: &str) -> String {
    match v {
        Value::Null => null.to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        other => serde_json::to_string(&JsonValue(other)).unwrap_or_default(),
    }
}

/// `s` with every control character written as an escape (`\u{1b}`, `\n`), so
/// that a table on a terminal shows what is stored instead of acting on it (an
/// escape sequence in a stored string could otherwise recolour or retitle the
/// terminal) and every row stays one line.
fn visible(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn table(rows: &Rows, out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(rows.columns.iter().map(|c| visible(&c.name)));
    for row in &rows.rows {
        t.add_row(row.iter().map(|v| visible(&text(v, "NULL"))));
    }
    for (i, c) in rows.columns.iter().enumerate() {
        if matches!(c.ty, Type::Int | Type::Float)
            && let Some(col) = t.column_mut(i)
        {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    if !rows.columns.is_empty() {
        writeln!(out, "{t}")?;
    }
    let n = rows.rows.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
}

fn csv(rows: &Rows, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(rows.columns.iter().map(|c| c.name.as_str()))?;
    for row in &rows.rows {
        w.write_record(row.iter().map(|v| text(v, "")))?;
    }
    w.flush()
}

fn json_lines(rows: &Rows, out: &mut dyn Write) -> io::Result<()> {
    for row in &rows.rows {
        serde_json::to_writer(
            &mut *out,
            &JsonRow {
                columns: &rows.columns,
                values: row,
            },
        )?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiledb::Column;

    fn sample() -> Output {
        let col = |name: &str, ty| Column {
            name: name.into(),
            ty,
        };
        Output::Rows(Rows {
            columns: vec![
                col("id", Type::String),
                col("score", Type::Float),
                col("v", Type::Vector),
            ],
            rows: vec![
                vec![
                    Value::String("u1".into()),
                    Value::Float(0.1),
                    Value::Vector(vec![1.0, 0.5]),
                ],
                vec![Value::String("a,b".into()), Value::Null, Value::Null],
            ],
        })
    }

    fn render(output: &Output, format: Format) -> (String, String) {
        let (mut out, mut info) = (Vec::new(), Vec::new());
        print(output, format, &mut out, &mut info).expect("writes to memory");
        (
            String::from_utf8_lossy(&out).into(),
            String::from_utf8_lossy(&info).into(),
        )
    }

    #[test]
    fn csv_has_a_header_empty_nulls_and_quoted_vectors() {
        let (out, info) = render(&sample(), Format::Csv);
        assert_eq!(out, "id,score,v\nu1,0.1,\"[1.0,0.5]\"\n\"a,b\",,\n");
        assert_eq!(info, "");
    }

    #[test]
    fn tables_escape_control_characters() {
        let out = Output::Rows(Rows {
            columns: vec![Column {
                name: "name\u{7}".into(),
                ty: Type::String,
            }],
            rows: vec![vec![Value::String("a\u{1b}[31mred\nnext\u{9b}".into())]],
        });
        let (table, _) = render(&out, Format::Table);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        assert!(table.contains("a\\u{1b}[31mred\\nnext\\u{9b}"), "{table}");
        assert!(table.contains("name\\u{7}"), "{table}");
        // CSV and JSON carry the data as it is (JSON escapes it by its own rules).
        let (csv, _) = render(&out, Format::Csv);
        assert!(csv.contains('\u{1b}'));
        let (json, _) = render(&out, Format::Json);
        assert!(json.contains("\\u001b"), "{json}");
    }

    #[test]
    fn json_is_one_object_per_row() {
        let (out, _) = render(&sample(), Format::Json);
        assert_eq!(
            out,
            "{\"id\":\"u1\",\"score\":0.1,\"v\":[1.0,0.5]}\n{\"id\":\"a,b\",\"score\":null,\"v\":null}\n"
        );
    }

    #[test]
    fn table_aligns_and_counts() {
        let (out, _) = render(&sample(), Format::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("u1") && l.contains("0.1") && l.contains("[1.0,0.5]")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("a,b") && l.contains("NULL")),
            "{out}"
        );
        assert_eq!(lines.last(), Some(&"(2 rows)"));
        // Every line of the table is equally wide.
        let widths: Vec<usize> = lines[..lines.len() - 1]
            .iter()
            .map(|l| l.chars().count())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{out}");
    }

    #[test]
    fn summaries_leave_stdout_to_rows_in_csv_and_json() {
        let done = Output::Done {
            summary: "INSERT 2".into(),
            count: Some(2),
        };
        assert_eq!(
            render(&done, Format::Table),
            ("INSERT 2\n".into(), String::new())
        );
        assert_eq!(
            render(&done, Format::Csv),
            (String::new(), "INSERT 2\n".into())
        );
        assert_eq!(
            render(&done, Format::Json),
            (String::new(), "INSERT 2\n".into())
        );
    }
}
