//! Printing a statement's output as an aligned table, CSV or JSON Lines.
//!
//! Rows go to `out`. In CSV and JSON modes a statement that returns no rows
//! prints its summary (`INSERT 2`) to `info`, so that `out` carries only rows.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use profiledb::{Output, Rows, Type, Value};

use profiledb::json::{JsonRow, JsonValue};

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

/// Whether a table is printed a record at a time, a `column | value` line
/// per column (`\\x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expanded {
    /// One line per row.
    #[default]
    Off,
    /// A record at a time.
    On,
    /// A record at a time when one line per row is wider than the terminal.
    Auto,
}

/// How a table reads: expanded or not, and floats rounded to so many
/// significant digits (`None`: exact). CSV and JSON stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub expanded: Expanded,
    pub precision: Option<usize>,
}

/// Significant digits a table shows a float with, unless told otherwise.
pub const DEFAULT_PRECISION: usize = 10;

impl Default for Style {
    fn default() -> Style {
        Style {
            expanded: Expanded::Off,
            precision: Some(DEFAULT_PRECISION),
        }
    }
}

impl Style {
    /// Exact values, one line per row.
    pub const EXACT: Style = Style {
        expanded: Expanded::Off,
        precision: None,
    };
}

/// Prints one statement's output with exact values.
pub fn print(
    output: &Output,
    format: Format,
    out: &mut dyn Write,
    info: &mut dyn Write,
) -> io::Result<()> {
    print_styled(output, format, Style::EXACT, out, info)
}

/// Prints one statement's output; a table as `style` says.
pub fn print_styled(
    output: &Output,
    format: Format,
    style: Style,
    out: &mut dyn Write,
    info: &mut dyn Write,
) -> io::Result<()> {
    match output {
        Output::Done { summary, .. } => match format {
            Format::Table => writeln!(out, "{summary}"),
            Format::Csv | Format::Json => writeln!(info, "{summary}"),
        },
        Output::Rows(rows) => match format {
            Format::Table => table(rows, style, out),
            Format::Csv => csv(rows, out),
            Format::Json => json_lines(rows, out),
        },
    }
}

/// `v` as a table shows it: floats (also in vectors and maps) rounded to
/// `precision` significant digits, then in their shortest form.
fn shown(v: &Value, precision: Option<usize>) -> String {
    let Some(p) = precision else {
        return text(v, "NULL");
    };
    let round = |x: f64| -> f64 {
        if x == 0.0 || !x.is_finite() {
            return x;
        }
        format!("{:.*e}", p.clamp(1, 17) - 1, x)
            .parse()
            .unwrap_or(x)
    };
    match v {
        Value::Float(x) => text(&Value::Float(round(*x)), "NULL"),
        Value::Vector(xs) => text(
            &Value::Vector(xs.iter().map(|x| round(f64::from(*x)) as f32).collect()),
            "NULL",
        ),
        Value::Map(m) => text(
            &Value::Map(m.iter().map(|(k, x)| (k.clone(), round(*x))).collect()),
            "NULL",
        ),
        other => text(other, "NULL"),
    }
}

/// The terminal's width: `COLUMNS`, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w > 0)
        .unwrap_or(80)
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

fn table(rows: &Rows, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| visible(&shown(v, style.precision)))
                .collect()
        })
        .collect();
    let wide = || {
        // Each cell with its separator, and the border.
        let widths = rows.columns.iter().enumerate().map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.name.chars().count()])
                .max()
                .unwrap_or(0)
                + 3
        });
        widths.sum::<usize>() + 1 > terminal_width()
    };
    let expanded = match style.expanded {
        Expanded::On => true,
        Expanded::Off => false,
        Expanded::Auto => wide(),
    };
    if expanded {
        return records(rows, &cells, out);
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(rows.columns.iter().map(|c| visible(&c.name)));
    for row in cells {
        t.add_row(row);
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

/// The expanded form: a `-[ RECORD n ]-` line, then `column | value` per
/// column, names aligned.
fn records(rows: &Rows, cells: &[Vec<String>], out: &mut dyn Write) -> io::Result<()> {
    let names: Vec<String> = rows.columns.iter().map(|c| visible(&c.name)).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    for (i, row) in cells.iter().enumerate() {
        writeln!(out, "-[ RECORD {} ]-", i + 1)?;
        for (name, cell) in names.iter().zip(row) {
            writeln!(out, "{name:<width$} | {cell}")?;
        }
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

    fn styled(output: &Output, format: Format, style: Style) -> String {
        let (mut out, mut info) = (Vec::new(), Vec::new());
        print_styled(output, format, style, &mut out, &mut info).expect("writes to memory");
        String::from_utf8_lossy(&out).into()
    }

    fn floats() -> Output {
        Output::Rows(Rows {
            columns: vec![Column {
                name: "spend".into(),
                ty: Type::Float,
            }],
            rows: vec![
                vec![Value::Float(2324.2799999999997)],
                vec![Value::Float(1.0 / 3.0)],
                vec![Value::Float(1.5e-12)],
            ],
        })
    }

    /// Tables round floats for reading, to the precision asked; CSV and
    /// JSON keep them exact.
    #[test]
    fn tables_round_floats_and_csv_keeps_them() {
        let out = styled(&floats(), Format::Table, Style::default());
        assert!(
            out.contains("2324.28") && !out.contains("2324.2799"),
            "{out}"
        );
        assert!(
            out.contains("0.3333333333") && !out.contains("0.33333333333"),
            "{out}"
        );
        assert!(out.contains("1.5e-12"), "{out}");
        let three = Style {
            precision: Some(3),
            ..Style::default()
        };
        let out = styled(&floats(), Format::Table, three);
        assert!(out.contains("2320.0") && out.contains("0.333"), "{out}");
        let exact = styled(&floats(), Format::Table, Style::EXACT);
        assert!(exact.contains("2324.2799999999997"), "{exact}");
        let csv = styled(&floats(), Format::Csv, three);
        assert!(csv.contains("2324.2799999999997"), "{csv}");
    }

    /// Expanded display: a record at a time, names aligned; auto expands a
    /// table wider than the terminal only.
    #[test]
    fn expanded_display_prints_a_record_at_a_time() {
        let on = Style {
            expanded: Expanded::On,
            precision: None,
        };
        let out = styled(&sample(), Format::Table, on);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "-[ RECORD 1 ]-");
        assert_eq!(lines[1], "id    | u1");
        assert_eq!(lines[2], "score | 0.1");
        assert_eq!(lines[3], "v     | [1.0,0.5]");
        assert_eq!(lines[4], "-[ RECORD 2 ]-");
        assert_eq!(lines.last(), Some(&"(2 rows)"));
        let auto = Style {
            expanded: Expanded::Auto,
            precision: None,
        };
        // Narrow: a table.
        assert!(!styled(&sample(), Format::Table, auto).contains("RECORD"));
        // Wider than 80 columns: records.
        let wide = Output::Rows(Rows {
            columns: vec![Column {
                name: "text".into(),
                ty: Type::String,
            }],
            rows: vec![vec![Value::String("x".repeat(120))]],
        });
        assert!(styled(&wide, Format::Table, auto).contains("-[ RECORD 1 ]-"));
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
