//! Finding the yt-dlp executable the way the operating system will when it is run: a path
//! is taken as it is; a bare name is looked up in each `PATH` directory, with Windows'
//! executable extensions (`PATHEXT`, default `.EXE;.CMD;.BAT`) tried first there. The one
//! place PrismQ looks yt-dlp up (readiness and `prismq validate`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `program` if it is a path to an existing file, else its first match on `PATH`.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    find_in(program, std::env::var_os("PATH"), extensions())
}

fn extensions() -> Vec<String> {
    if cfg!(windows) {
        std::env::var("PATHEXT")
            .unwrap_or_else(|_| ".EXE;.CMD;.BAT".into())
            .split(';')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .chain(std::iter::once(String::new()))
            .collect()
    } else {
        vec![String::new()]
    }
}

fn find_in(program: &Path, path: Option<OsString>, exts: Vec<String>) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_absolute() {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = path?;
    std::env::split_paths(&path).find_map(|dir| {
        exts.iter().find_map(|ext| {
            let mut name = program.as_os_str().to_owned();
            name.push(ext);
            let candidate = dir.join(name);
            candidate.is_file().then_some(candidate)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_name_on_path_with_or_without_an_extension_and_takes_paths_as_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), "").unwrap();
        std::fs::write(dir.path().join("win.EXE"), "").unwrap();
        let path = Some(std::env::join_paths([dir.path()]).unwrap());
        let exts = vec![".EXE".to_owned(), String::new()];
        assert_eq!(
            find_in(Path::new("tool"), path.clone(), exts.clone()),
            Some(dir.path().join("tool"))
        );
        assert_eq!(
            find_in(Path::new("win"), path.clone(), exts.clone()),
            Some(dir.path().join("win.EXE"))
        );
        assert_eq!(
            find_in(Path::new("missing"), path.clone(), exts.clone()),
            None
        );
        assert_eq!(find_in(Path::new("tool"), None, exts.clone()), None);
        let full = dir.path().join("tool");
        assert_eq!(find_in(&full, None, exts.clone()), Some(full.clone()));
        assert_eq!(find_in(&dir.path().join("nope"), path, exts), None);
    }
}
