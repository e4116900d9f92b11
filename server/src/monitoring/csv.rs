//! CSV answers (`Accept: text/csv`) for the instruction list and the figures: RFC 4180 quoting, CRLF line
//! ends, a header row. Spreadsheet formula injection is defused: a field starting with `=`, `+`, `-`, `@`
//! gets a leading apostrophe, since these files are opened in spreadsheets by people.

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};

/// Does the client ask for CSV? (`Accept: text/csv`, alone or among others.)
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| part.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv")))
}

/// A table being written.
pub struct Table {
    text: String,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        let mut t = Table { text: String::new() };
        t.row(header.iter().map(|s| s.to_string()));
        t
    }

    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) {
        let line: Vec<String> = fields.into_iter().map(|f| field(&f)).collect();
        self.text.push_str(&line.join(","));
        self.text.push_str("\r\n");
    }

    /// The answer: `text/csv` as an attachment named `filename`.
    pub fn into_response(self, filename: &str) -> Response {
        let mut resp = self.text.into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    }
}

fn field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if defused.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// An optional number as a CSV field (empty when absent).
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted() {
        let mut t = Table::new(&["a", "b"]);
        t.row(["x,y".to_string(), "say \"hi\"\nbye".to_string()]);
        assert_eq!(t.text, "a,b\r\n\"x,y\",\"say \"\"hi\"\"\nbye\"\r\n");
    }

    #[test]
    fn a_field_that_a_spreadsheet_would_run_as_a_formula_is_defused_but_numbers_are_not() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-3.5"), "-3.5");
        assert_eq!(field("@sum"), "'@sum");
    }

    #[test]
    fn csv_is_wanted_when_the_accept_header_names_it_anywhere() {
        let mut h = HeaderMap::new();
        assert!(!wanted(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/csv;q=0.9"));
        assert!(wanted(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wanted(&h));
    }
}
