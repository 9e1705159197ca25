//! A file sink's writer: appends each entry as one line. Before each batch it checks that the
//! path still names the file it has open, and reopens it when logrotate (or anyone) moved or
//! deleted it; with `reopen` it opens the file afresh for every batch (Kong's `reopen`). A file
//! allowed by a directory grant is opened only if no symbolic link leads out of the directory.

use super::{AllowedFile, Stats, Warner};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

/// Most bytes written in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// Runs until every holder of the sink is gone and its queue is empty.
pub(super) fn run(file: AllowedFile, reopen: bool, rx: Receiver<String>, stats: Arc<Stats>) {
    let path = &file.path;
    let mut warner = Warner::new(format!("file:{}", path.display()));
    let mut open: Option<(File, (u64, u64))> = None;
    let mut batch = Vec::with_capacity(64 << 10);
    while let Ok(first) = rx.recv() {
        batch.clear();
        let mut n = 0;
        let mut next = Some(first);
        while let Some(entry) = next {
            push_line(&mut batch, &entry);
            n += 1;
            next = if batch.len() < BATCH_BYTES { rx.try_recv().ok() } else { None };
        }
        stats.taken(batch.len() - n);
        if reopen || !still_there(path, open.as_ref().map(|(_, id)| *id)) {
            open = None;
        }
        if open.is_none() {
            match open_append(&file) {
                Ok(f) => open = Some(f),
                Err(e) => {
                    warner.warn("cannot open the file; entries dropped", &e);
                    stats.failed(n);
                    continue;
                }
            }
        }
        let (file, _) = open.as_mut().expect("opened above");
        match file.write_all(&batch) {
            Ok(()) => stats.written(n),
            Err(e) => {
                warner.warn("cannot write the file; entries dropped", &e);
                stats.failed(n);
                open = None;
            }
        }
    }
}

/// Appends `entry` and a newline; line breaks inside it become spaces (still valid JSON).
fn push_line(batch: &mut Vec<u8>, entry: &str) {
    let start = batch.len();
    batch.extend_from_slice(entry.as_bytes());
    for b in &mut batch[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    batch.push(b'\n');
}

/// Whether `path` is the file with (device, inode) `id`.
fn still_there(path: &Path, id: Option<(u64, u64)>) -> bool {
    match (std::fs::metadata(path), id) {
        (Ok(m), Some(id)) => (m.dev(), m.ino()) == id,
        _ => false,
    }
}

/// Opens (or creates, mode 0640: log records may carry what clients sent) the file for appending.
fn open_append(allowed: &AllowedFile) -> std::io::Result<(File, (u64, u64))> {
    let mut options = OpenOptions::new();
    options.append(true).create(true).mode(0o640);
    if let Some(dir) = &allowed.within {
        let parent = allowed.path.parent().unwrap_or(dir).canonicalize()?;
        if !parent.starts_with(dir.canonicalize()?) {
            return Err(std::io::Error::other(format!("a symbolic link leads out of {}", dir.display())));
        }
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(&allowed.path)?;
    let m = file.metadata()?;
    Ok((file, (m.dev(), m.ino())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn no_symbolic_link_leads_out_of_a_granted_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (granted, elsewhere) = (tmp.path().join("logs"), tmp.path().join("elsewhere"));
        std::fs::create_dir_all(&granted).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, granted.join("dir")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("target"), granted.join("file")).unwrap();
        let file = |name: &str| AllowedFile { path: granted.join(name), within: Some(granted.clone()) };
        assert!(open_append(&file("ok.log")).is_ok());
        assert!(open_append(&file("dir/x.log")).unwrap_err().to_string().contains("symbolic link leads out"));
        assert!(open_append(&file("file")).is_err(), "the last component is not followed");
        assert!(!elsewhere.join("x.log").exists() && !elsewhere.join("target").exists());
        let mode = std::fs::metadata(granted.join("ok.log")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640 & !umask());
    }

    fn umask() -> u32 {
        // SAFETY: umask only swaps the process's mask; it is set back at once.
        unsafe {
            let m = libc::umask(0);
            libc::umask(m);
            m
        }
    }

    #[test]
    fn an_entry_is_one_line() {
        let mut batch = Vec::new();
        push_line(&mut batch, "{\"a\":\n1}");
        push_line(&mut batch, "b\r\n");
        assert_eq!(batch, b"{\"a\": 1}\nb  \n");
    }
}
