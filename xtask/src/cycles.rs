//! `cargo xtask cycles`: the check that no module imports one that imports it back. For each
//! crate of the workspace, the top-level modules of its `src/` and which others each names
//! (`crate::X`, `crate::{X, …}` in code; comments and string literals left out); a cycle is a
//! strongly connected group of more than one module. Product code only: test files (a name with
//! `test`, the `testutil` and `fixtures` folders) and inline `#[cfg(test)] mod` blocks may use a
//! neighbour's fixtures. docs/design.md, "Import cycles and long functions", says why.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules of the same crate it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The crates of the workspace at `root` with a `src/` folder (the fuzz crate, a workspace of its
/// own, left out), and each one's cycles; only crates with a cycle are listed.
pub fn workspace_cycles(root: &Path) -> Result<Vec<(PathBuf, Vec<Vec<String>>)>> {
    let mut out = Vec::new();
    for dir in crate_dirs(root)? {
        let cycles = cycles(&graph(&dir.join("src"))?);
        if !cycles.is_empty() {
            out.push((dir, cycles));
        }
    }
    Ok(out)
}

fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for parent in [root.to_path_buf(), root.join("common")] {
        for e in std::fs::read_dir(&parent).with_context(|| format!("{}", parent.display()))? {
            let p = e?.path();
            let name = p.file_name().unwrap_or_default();
            if name != "fuzz" && name != "target" && p.join("Cargo.toml").is_file() {
                dirs.push(p);
            }
        }
    }
    dirs.retain(|d| d.join("src").is_dir());
    dirs.sort();
    Ok(dirs)
}

/// The import graph between the top-level modules of the crate source folder `src`.
pub fn graph(src: &Path) -> Result<Graph> {
    let mut g = Graph::new();
    for e in std::fs::read_dir(src).with_context(|| format!("{}", src.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let module = match name.strip_suffix(".rs") {
            Some("lib" | "main" | "testutil") => continue,
            Some(m) => m.to_string(),
            None if p.is_dir() && !["bin", "testutil", "fixtures"].contains(&name.as_str()) => name,
            None => continue,
        };
        g.insert(module, BTreeSet::new());
    }
    let modules: BTreeSet<String> = g.keys().cloned().collect();
    for m in &modules {
        let mut files = Vec::new();
        let file = src.join(format!("{m}.rs"));
        if file.is_file() {
            files.push(file);
        }
        product_files(&src.join(m), &mut files)?;
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?;
            for named in named_modules(&text) {
                if modules.contains(&named) && named != *m {
                    g.get_mut(m).expect("a module of the graph").insert(named);
                }
            }
        }
    }
    Ok(g)
}

/// The `.rs` files under `dir` that are not tests or test helpers.
fn product_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if name.contains("test") || name == "fixtures" {
            continue;
        }
        if p.is_dir() {
            product_files(&p, out)?;
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The first path segments after `crate::` in `text`'s code, before any `#[cfg(test)] mod`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let code = code_of(text);
    let end = code
        .match_indices("#[cfg(test)]")
        .map(|(i, a)| i + a.len())
        .find(|&i| inline_module(&code[i..]))
        .map_or(code.len(), |i| i - "#[cfg(test)]".len());
    let code = &code[..end];
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `partial_crate::…`, not this crate
        }
        let rest = &code[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                out.extend(group.split(',').filter_map(|s| ident(s.trim_start())));
            }
            None => out.extend(ident(rest)),
        }
    }
    out
}

/// Whether `s` starts with an inline module (`mod NAME {`), not a file's (`mod NAME;`).
fn inline_module(s: &str) -> bool {
    let s = s.trim_start();
    let s = ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|v| s.strip_prefix(v))
        .unwrap_or(s);
    let Some(rest) = s.trim_start().strip_prefix("mod ") else {
        return false;
    };
    let name = ident(rest.trim_start()).unwrap_or_default();
    rest.trim_start()[name.len()..]
        .trim_start()
        .starts_with('{')
}

fn ident(s: &str) -> Option<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

/// `text` without comments and with string literals emptied (so that `"crate::x"` and
/// `// crate::x` name nothing).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push_str("\"\"");
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The strongly connected groups of more than one module (Tarjan), each sorted.
pub fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.g[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|x| *x == v).expect("on the stack");
            let mut group: Vec<String> = s.stack.drain(at..).map(String::from).collect();
            if group.len() > 1 {
                group.sort();
                s.out.push(group);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn a_module_naming_one_that_names_it_back_is_a_cycle() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
                ("a/mod.rs", "use crate::b::X;\n"),
                ("b.rs", "pub fn f() { crate::{c::Y, a::Z}; }\n"),
                (
                    "c.rs",
                    "// crate::a in a comment\nconst S: &str = \"crate::a\";\n",
                ),
            ],
        );
        let g = graph(dir.path()).unwrap();
        assert_eq!(cycles(&g), [["a", "b"]]);
        assert!(g["c"].is_empty(), "{g:?}");
    }

    #[test]
    fn tests_and_test_helpers_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("a/mod.rs", "use crate::b;\n"),
                ("a/tests.rs", "use crate::testutil;\n"),
                (
                    "b.rs",
                    "#[cfg(test)]\nmod file_tests;\nuse crate::c;\n#[cfg(test)]\npub(crate) mod tests { use crate::a; }\n",
                ),
                ("c.rs", "use crate::b;\n"),
                ("testutil/mod.rs", "use crate::a;\n"),
            ],
        );
        // Only b and c name each other: the code after `mod file_tests;` counts.
        assert_eq!(cycles(&graph(dir.path()).unwrap()), [["b", "c"]]);
    }

    #[test]
    fn the_workspace_has_no_module_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let found = workspace_cycles(root).unwrap();
        assert!(found.is_empty(), "import cycles: {found:?}");
        assert!(
            crate_dirs(root).unwrap().len() >= 10,
            "the crates were found"
        );
    }
}
