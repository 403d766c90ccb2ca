//! Printing API answers as a table, JSON or YAML.

use std::io::IsTerminal;

use anyhow::Context;
use serde_json::Value;

use crate::cli::OutputFormat;

/// Which columns a table shows for a kind of object: (heading, JSON field).
pub type Columns = &'static [(&'static str, &'static str)];

/// The format in effect: the flag, else a table on a terminal and JSON otherwise.
pub fn format(flag: Option<OutputFormat>) -> OutputFormat {
    flag.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    })
}

/// Prints `value` (an object or a list of objects).
pub fn print(value: &Value, format: OutputFormat, columns: Columns) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).context("rendering JSON")?
        ),
        OutputFormat::Yaml => print!(
            "{}",
            serde_yaml_ng::to_string(value).context("rendering YAML")?
        ),
        OutputFormat::Table => print!("{}", table(value, columns)),
    }
    Ok(())
}

fn cell(object: &Value, field: &str) -> String {
    match object.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| item.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// Renders rows under headings, columns padded to their widest cell.
pub fn table(value: &Value, columns: Columns) -> String {
    let rows: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut grid: Vec<Vec<String>> = vec![
        columns
            .iter()
            .map(|(heading, _)| (*heading).to_owned())
            .collect(),
    ];
    grid.extend(
        rows.iter()
            .map(|row| columns.iter().map(|(_, field)| cell(row, field)).collect()),
    );
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            grid.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn table_pads_columns() {
        let value = json!([{"id": "a", "name": "first"}, {"id": "bbb", "envs": [{"id": "dev"}]}]);
        let rendered = super::table(&value, &[("ID", "id"), ("NAME", "name"), ("ENVS", "envs")]);
        assert_eq!(rendered, "ID   NAME   ENVS\na    first\nbbb         dev\n");
    }
}
