//! The monthly log files: `data/log/dncs-YYYY-MM.log`, appended by every run, files older than
//! `LOG_MONTHS` months removed.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// The log file of the month of `now`.
pub fn path_for(data_dir: &Path, now: DateTime<Utc>) -> PathBuf {
    data_dir
        .join("log")
        .join(format!("dncs-{:04}-{:02}.log", now.year(), now.month()))
}

/// Sends `log` records at `level` and above to this month's file; a second call is a no-op.
pub fn init(data_dir: &Path, level: log::LevelFilter, now: DateTime<Utc>) -> std::io::Result<()> {
    let path = path_for(data_dir, now);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    // Already initialised (tests, or a second call) is fine.
    let _ = simplelog::WriteLogger::init(level, line_format(), WholeLines::new(file));
    Ok(())
}

/// Like [`init`], for the CGI: the file (and its folder) is opened only when a record is
/// written, so that the many page views that log nothing cost no file system calls for it.
/// A file that cannot be written then loses the record; the page still answers.
pub fn init_on_first_record(data_dir: &Path, level: log::LevelFilter, now: DateTime<Utc>) {
    let file = OpenedOnFirstWrite {
        path: path_for(data_dir, now),
        file: None,
    };
    let _ = simplelog::WriteLogger::init(level, line_format(), WholeLines::new(file));
}

/// One format for every program's lines, which share the month's file.
fn line_format() -> simplelog::Config {
    simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .build()
}

/// Hands the file each line whole, in one write. The logger writes a record piece by piece (time,
/// level, message, each a write), and the CGI and the scheduled run append to the same month's
/// file at once: written in pieces, their lines could cross. One append is never split.
struct WholeLines<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> WholeLines<W> {
    fn new(inner: W) -> Self {
        WholeLines {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for WholeLines<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            let lines: Vec<u8> = self.pending.drain(..=last_newline).collect();
            // A line that cannot be written is lost, not kept to grow with every later record.
            self.inner.write_all(&lines)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.inner.write_all(&rest)?;
        }
        self.inner.flush()
    }
}

/// A log file opened for appending at the first write.
struct OpenedOnFirstWrite {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl std::io::Write for OpenedOnFirstWrite {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                if let Some(parent) = self.path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let opened = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.file.insert(opened)
            }
        };
        file.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Removes monthly files older than `keep_months` (other files are left alone).
pub fn prune(data_dir: &Path, now: DateTime<Utc>, keep_months: u32) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("log")) else {
        return;
    };
    let this_month = now.year() * 12 + now.month0() as i32;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(month) = name
            .to_str()
            .and_then(|n| n.strip_prefix("dncs-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| NaiveDate::parse_from_str(&format!("{n}-01"), "%Y-%m-%d").ok())
        else {
            continue;
        };
        let age = this_month - (month.year() * 12 + month.month0() as i32);
        if age >= keep_months as i32 {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                log::warn!("removing the old log {}: {e}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgi_log_file_is_made_at_its_first_record_only() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log").join("dncs-2026-11.log");
        let mut file = OpenedOnFirstWrite {
            path: path.clone(),
            file: None,
        };
        file.flush().expect("flush");
        assert!(
            !dir.path().join("log").exists(),
            "nothing written, nothing made"
        );
        file.write_all(b"first\n").expect("write");
        file.write_all(b"second\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "first\nsecond\n"
        );
        // Appended, never truncated: other processes write the same month's file.
        let mut again = OpenedOnFirstWrite {
            path: path.clone(),
            file: None,
        };
        again.write_all(b"third\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "first\nsecond\nthird\n"
        );
    }

    /// Each write call the file receives.
    #[derive(Default)]
    struct Writes(Vec<String>);

    impl std::io::Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.push(String::from_utf8_lossy(bytes).into_owned());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_record_written_in_pieces_reaches_the_file_in_one_write() {
        use std::io::Write;
        let mut lines = WholeLines::new(Writes::default());
        for piece in [
            "2026-11-25T00:00:00Z",
            " [INFO] ",
            "first",
            "\n",
            "sec",
            "ond\nthi",
        ] {
            lines.write_all(piece.as_bytes()).expect("write");
        }
        assert_eq!(
            lines.inner.0,
            ["2026-11-25T00:00:00Z [INFO] first\n", "second\n"]
        );
        lines.write_all(b"rd\n").expect("write");
        lines.write_all(b"unfinished").expect("write");
        lines.flush().expect("flush");
        assert_eq!(
            lines.inner.0[2..],
            ["third\n".to_string(), "unfinished".to_string()]
        );
    }

    #[test]
    fn files_older_than_the_kept_months_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("log")).expect("log dir");
        for name in [
            "dncs-2026-04.log",
            "dncs-2026-06.log",
            "dncs-2026-11.log",
            "other.txt",
        ] {
            std::fs::write(dir.path().join("log").join(name), "x").expect("file");
        }
        let now = DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        prune(dir.path(), now, 6);
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("log"))
            .expect("read")
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["dncs-2026-06.log", "dncs-2026-11.log", "other.txt"]
        );
        assert!(path_for(dir.path(), now).ends_with("log/dncs-2026-11.log"));
    }
}
