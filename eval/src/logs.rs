//! Time-coded query logs: the CSV a documentalist (or a script) writes.
//!
//! ```text
//! video,start,end,query,image
//! DG90602601.mp4,00:02:22.205,00:02:41.861,lab worker mixing dyes,
//! colours,6.0,9.0,,queries/blue.png
//! ```
//!
//! `video` is a bundle video id or a source file name; `start`/`end` are
//! timecodes (`HH:MM:SS.mmm`, `MM:SS` or seconds); exactly one of `query` and
//! `image` is given.

use std::path::{Path, PathBuf};

use busca_core::shot::parse_timecode;

/// One logged span and the query that should find it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedQuery {
    /// 1-based line in the CSV (header is line 1).
    pub line: usize,
    /// The video as logged (id or file name).
    pub video: String,
    /// Start of the logged span, ms.
    pub start_ms: u64,
    /// End of the logged span, ms.
    pub end_ms: u64,
    /// What is searched for.
    pub query: QueryInput,
}

/// A text description or an image file.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryInput {
    /// Text query.
    Text(String),
    /// Image query, path resolved against the CSV's folder.
    Image(PathBuf),
}

/// A log that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The CSV.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A column is missing from the header.
    #[error("{path}: the header has no {column:?} column (expected video,start,end,query,image)")]
    MissingColumn {
        /// The CSV.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A row is malformed.
    #[error("{path}:{line}: {reason}")]
    Row {
        /// The CSV.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a query log.
pub fn read_logs(path: &Path) -> Result<Vec<LoggedQuery>, LogError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|source| LogError::Read { path: path.into(), source })?;
    let headers = reader
        .headers()
        .map_err(|source| LogError::Read { path: path.into(), source })?
        .clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or(LogError::MissingColumn { path: path.into(), column: name })
    };
    let (video, start, end) = (column("video")?, column("start")?, column("end")?);
    let query = column("query").ok();
    let image = column("image").ok();
    if query.is_none() && image.is_none() {
        return Err(LogError::MissingColumn { path: path.into(), column: "query" });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let row_err = |reason: String| LogError::Row { path: path.into(), line, reason };
        let record = record.map_err(|e| row_err(e.to_string()))?;
        let field = |idx: Option<usize>| idx.and_then(|i| record.get(i)).unwrap_or("").trim().to_string();
        let video = field(Some(video));
        if video.is_empty() {
            return Err(row_err("empty video".into()));
        }
        let time = |idx: usize, name: &str| {
            let text = field(Some(idx));
            parse_timecode(&text).ok_or_else(|| row_err(format!("{name} {text:?} is not a timecode")))
        };
        let (start_ms, end_ms) = (time(start, "start")?, time(end, "end")?);
        if end_ms < start_ms {
            return Err(row_err(format!("end {end_ms} ms is before start {start_ms} ms")));
        }
        let (text, image) = (field(query), field(image));
        let query = match (text.is_empty(), image.is_empty()) {
            (false, true) => QueryInput::Text(text),
            (true, false) => QueryInput::Image(base.join(image)),
            (true, true) => return Err(row_err("give a query text or an image".into())),
            (false, false) => return Err(row_err("give a query text or an image, not both".into())),
        };
        rows.push(LoggedQuery { line, video, start_ms, end_ms, query });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_text_and_image_rows() {
        let (dir, path) = write(
            "video,start,end,query,image\nDG90602601.mp4,00:02:22.205,00:02:41.861,lab worker mixing dyes,\ncolours,6,9,,q/blue.png\n",
        );
        let rows = read_logs(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].start_ms, rows[0].end_ms), (142_205, 161_861));
        assert_eq!(rows[0].query, QueryInput::Text("lab worker mixing dyes".into()));
        assert_eq!(rows[1].query, QueryInput::Image(dir.path().join("q/blue.png")));
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn errors_name_the_line() {
        let (_dir, path) = write("video,start,end,query\nv,0,1,ok\nv,soon,2,bad time\n");
        let err = read_logs(&path).unwrap_err().to_string();
        assert!(err.contains(":3:") && err.contains("soon"), "{err}");
        let (_dir, path) = write("video,start,end,query\nv,5,1,backwards\n");
        assert!(read_logs(&path).unwrap_err().to_string().contains(":2: end"));
        let (_dir, path) = write("video,begin,end,query\n");
        assert!(read_logs(&path).unwrap_err().to_string().contains("\"start\""));
    }
}
