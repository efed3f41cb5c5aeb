//! Finding the videos to index: files, folders (recursive) and list files,
//! each video named by a stable id derived from its path relative to the
//! input root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use busca_core::error::IoAt;

/// One video to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputVideo {
    /// The file.
    pub path: PathBuf,
    /// Its id: the path relative to its input root, slugified.
    pub video_id: String,
}

/// Why inputs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path does not exist or cannot be read.
    #[error(transparent)]
    Io(#[from] IoAt),
}

/// Hidden files and our own work directories are never inputs.
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Turns a relative path into `[a-z0-9_-]`: lowercase ASCII letters and
/// digits kept, accents dropped to their base letter, everything else `_`,
/// runs collapsed, ends trimmed. Never empty.
pub fn slugify(relative: &str) -> String {
    let mut out = String::with_capacity(relative.len());
    for c in relative.chars() {
        let c = fold_accent(c).to_ascii_lowercase();
        let mapped = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            c
        } else {
            '_'
        };
        if mapped == '_' && out.ends_with('_') {
            continue;
        }
        out.push(mapped);
    }
    let trimmed = out.trim_matches(|c| c == '_' || c == '-');
    let slug: String = trimmed.chars().take(120).collect();
    if slug.is_empty() {
        "video".into()
    } else {
        slug
    }
}

/// Spanish and other Latin accents to their base letter, so that
/// `Telediario_Año_1987` becomes `telediario_ano_1987`.
fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'ä' | 'â' | 'ã' | 'å' => 'a',
        'Á' | 'À' | 'Ä' | 'Â' | 'Ã' | 'Å' => 'A',
        'é' | 'è' | 'ë' | 'ê' => 'e',
        'É' | 'È' | 'Ë' | 'Ê' => 'E',
        'í' | 'ì' | 'ï' | 'î' => 'i',
        'Í' | 'Ì' | 'Ï' | 'Î' => 'I',
        'ó' | 'ò' | 'ö' | 'ô' | 'õ' => 'o',
        'Ó' | 'Ò' | 'Ö' | 'Ô' | 'Õ' => 'O',
        'ú' | 'ù' | 'ü' | 'û' => 'u',
        'Ú' | 'Ù' | 'Ü' | 'Û' => 'U',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ç' => 'c',
        'Ç' => 'C',
        other => other,
    }
}

/// Drops the extension and makes the id: `news/1987/tele.mp4` →
/// `news_1987_tele`.
fn id_for(relative: &Path) -> String {
    let without_ext = relative.with_extension("");
    let parts: Vec<String> = without_ext
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    slugify(&parts.join("_"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(IoAt::at(dir))?.collect::<Result<_, _>>().map_err(IoAt::at(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // Follow symlinks to files and folders, as a user listing a folder expects.
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Lists the videos named by `paths` (files or folders, recursively) and by
/// `list_files` (one path per line, `#` comments, relative to the list file's
/// folder). Ids: a file given directly is named by its file name, a file found
/// in a folder by its path inside the folder, a listed file by its path as
/// written. Colliding ids get `-2`, `-3`... in input order; duplicates of the
/// same file are dropped.
pub fn collect(paths: &[PathBuf], list_files: &[PathBuf]) -> Result<Vec<InputVideo>, InputError> {
    // (path, relative name for the id)
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(IoAt::at(path))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            for file in files {
                let rel = file.strip_prefix(path).expect("walked under root").to_path_buf();
                found.push((file, rel));
            }
        } else {
            let name = path.file_name().map(PathBuf::from).unwrap_or_else(|| path.clone());
            found.push((path.clone(), name));
        }
    }
    for list in list_files {
        let text = std::fs::read_to_string(list).map_err(IoAt::at(list))?;
        let base = list.parent().unwrap_or(Path::new("."));
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let written = PathBuf::from(line);
            let path = if written.is_absolute() { written.clone() } else { base.join(&written) };
            found.push((path, written));
        }
    }
    let mut seen_paths = BTreeSet::new();
    let mut used_ids = BTreeSet::new();
    let mut out = Vec::new();
    for (path, rel) in found {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen_paths.insert(key) {
            continue;
        }
        let base = id_for(&rel);
        let mut id = base.clone();
        let mut n = 2;
        while !used_ids.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        out.push(InputVideo { path, video_id: id });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_readable() {
        assert_eq!(slugify("Telediario Año 1987/Parte #2"), "telediario_ano_1987_parte_2");
        assert_eq!(slugify("../..//"), "video");
        assert_eq!(slugify("a--b"), "a--b");
    }

    #[test]
    fn folders_give_relative_ids_and_collisions_get_suffixes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("news")).unwrap();
        std::fs::write(dir.path().join("news/a.mp4"), b"x").unwrap();
        std::fs::write(dir.path().join("news_a.mkv"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.mp4"), b"x").unwrap();
        let videos = collect(&[dir.path().to_path_buf()], &[]).unwrap();
        let ids: Vec<&str> = videos.iter().map(|v| v.video_id.as_str()).collect();
        assert_eq!(ids, vec!["news_a", "news_a-2"]);
        // The same file listed twice is indexed once.
        let list = dir.path().join("list.txt");
        std::fs::write(&list, "# videos\nnews/a.mp4\n\nnews/a.mp4\n").unwrap();
        let videos = collect(&[], &[list]).unwrap();
        assert_eq!(videos.len(), 1);
        assert_eq!(videos[0].video_id, "news_a");
    }

    #[test]
    fn missing_input_is_named() {
        let err = collect(&[PathBuf::from("/no/such/dir")], &[]).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"));
    }
}
