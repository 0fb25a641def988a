//! The structure ARCHITECTURE.md states, checked: no import circle inside any crate (modules that reach each
//! other through `crate::`, `super::` or `self::` paths, in-file test modules left out, as the structure
//! reviews count them), no source file over 800 lines and at most three over 600, at most 12 entries at the
//! top of `src/`, and ARCHITECTURE.md a ten-minute read (at most 3,000 words).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo;

/// The crates' source folders.
const CRATES: [&str; 4] = ["sim/src", "agents/src", "src", "gui/src"];

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The module path of each file of a crate rooted at `root` (`lib.rs`/`main.rs` the root, `bin/` left out).
fn modules(root: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut out = BTreeMap::new();
    for f in rust_files(root) {
        let rel = f.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            parts.clear();
        }
        out.insert(f, parts);
    }
    out
}

/// `text` without its in-file test module (from `#[cfg(test)] mod NAME {` on) and without `//` comments.
fn code_of(text: &str) -> String {
    let mut cut = text.len();
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        let rest = rest.strip_prefix("pub ").unwrap_or(rest);
        if let Some(r) = rest.strip_prefix("mod ")
            && r.split_once(|c: char| !c.is_alphanumeric() && c != '_')
                .is_some_and(|(_, tail)| tail.trim_start().starts_with('{'))
        {
            cut = at;
            break;
        }
        from = at + 1;
    }
    text[..cut].lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// The paths of a use tree `a::b::{c, d::{e}}` under `prefix`.
fn expand(prefix: &[String], body: &str) -> Vec<Vec<String>> {
    let (mut items, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in body.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    items.push(cur);
    let mut out = Vec::new();
    for it in items {
        let it: String = it.chars().filter(|c| !c.is_whitespace()).collect();
        if it.is_empty() {
            continue;
        }
        if let Some(b) = it.find("::{").filter(|_| it.ends_with('}')) {
            let mut p = prefix.to_vec();
            p.extend(it[..b].split("::").filter(|s| !s.is_empty()).map(String::from));
            out.extend(expand(&p, &it[b + 3..it.len() - 1]));
        } else {
            // (`F as G` reads `FasG` here: not a module, so it resolves to the module that holds `F`.)
            let mut p = prefix.to_vec();
            p.extend(it.split("::").filter(|s| !s.is_empty()).map(String::from));
            out.push(p);
        }
    }
    out
}

/// The module paths a file's code names (`use crate|super|self::…;` and inline `crate::…`/`super::…`), resolved
/// against the file's own module `me`.
fn targets(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("use ") {
        let at = from + i;
        from = at + 4;
        if at > 0 && code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let stmt = code[at + 4..].split(';').next().unwrap_or("").trim();
        if !["crate", "super", "self"].iter().any(|k| stmt.starts_with(k)) {
            continue;
        }
        match stmt.find('{') {
            Some(b) => {
                let head: Vec<String> =
                    stmt[..b].split("::").filter(|s| !s.trim().is_empty()).map(|s| s.trim().into()).collect();
                paths.extend(expand(&head, &stmt[b + 1..stmt.rfind('}').unwrap_or(stmt.len())]));
            }
            None => {
                let s = stmt.split(" as ").next().unwrap();
                paths.push(s.split("::").map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect());
            }
        }
    }
    let bytes = code.as_bytes();
    for key in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(key) {
            let at = from + i;
            from = at + key.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(path.split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
    }
    // A file's own module `me` (`a::b` for `a/b.rs` and for `a/b/mod.rs`): `super` is its parent either way.
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| match p[0].as_str() {
            "crate" => p[1..].to_vec(),
            "self" => me.iter().cloned().chain(p[1..].iter().cloned()).collect(),
            _ => {
                let (mut cur, mut q) = (me.to_vec(), &p[..]);
                while q.first().is_some_and(|s| s == "super") {
                    cur.pop();
                    q = &q[1..];
                }
                cur.into_iter().chain(q.iter().cloned()).collect()
            }
        })
        .collect()
}

/// The import circles of the crate rooted at `root`: each a set of files that reach each other.
fn circles(root: &Path) -> Vec<BTreeSet<PathBuf>> {
    let mods = modules(root);
    let by_mod: BTreeMap<&Vec<String>, &PathBuf> = mods.iter().map(|(f, m)| (m, f)).collect();
    let mut edges: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = BTreeMap::new();
    for (f, m) in &mods {
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for mut t in targets(&code, m) {
            while !t.is_empty() && !by_mod.contains_key(&t) {
                t.pop();
            }
            if let Some(&g) = by_mod.get(&t).filter(|_| !t.is_empty())
                && g != f
            {
                edges.entry(f).or_default().insert(g);
            }
        }
    }
    // Two files are in one circle when each reaches the other.
    let reach = |from: &PathBuf| {
        let mut seen: BTreeSet<&PathBuf> = BTreeSet::new();
        let mut stack: Vec<&PathBuf> = edges.get(from).into_iter().flatten().copied().collect();
        while let Some(x) = stack.pop() {
            if seen.insert(x) {
                stack.extend(edges.get(x).into_iter().flatten().copied());
            }
        }
        seen.into_iter().cloned().collect::<BTreeSet<PathBuf>>()
    };
    let reached: BTreeMap<&PathBuf, BTreeSet<PathBuf>> = mods.keys().map(|f| (f, reach(f))).collect();
    let mut out: Vec<BTreeSet<PathBuf>> = Vec::new();
    for (f, r) in &reached {
        if !r.contains(*f) || out.iter().any(|c| c.contains(*f)) {
            continue;
        }
        out.push(r.iter().filter(|g| reached[g].contains(*f)).cloned().collect());
    }
    out
}

#[test]
fn no_crate_has_an_import_circle() {
    for c in CRATES {
        let found = circles(&repo().join(c));
        assert!(found.is_empty(), "{c}: import circles {found:#?}");
    }
}

#[test]
fn the_circle_check_finds_a_circle_and_ignores_tests_and_comments() {
    let d = tempfile::tempdir().unwrap();
    let w = |p: &str, t: &str| {
        std::fs::create_dir_all(d.path().join(p).parent().unwrap()).unwrap();
        std::fs::write(d.path().join(p), t).unwrap();
    };
    w("lib.rs", "mod a; mod b; mod c;\n");
    w("a.rs", "use crate::b::X;\n// use crate::c::Y;\n#[cfg(test)]\nmod tests {\n    use crate::c::Z;\n}\n");
    w("b.rs", "pub struct X;\nfn f() { super::a::g(); }\n");
    w("c/mod.rs", "use self::d::{E, F as G};\n");
    w("c/d.rs", "pub struct E; pub struct F;\nuse super::super::a;\n");
    let found = circles(d.path());
    assert_eq!(found.len(), 1, "{found:?}");
    let names: BTreeSet<String> =
        found[0].iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["a.rs", "b.rs"].map(String::from).into_iter().collect());
    // c/mod.rs → c/d.rs → a.rs, and nothing back: no circle there.
}

#[test]
fn source_files_stay_small() {
    let mut sizes: Vec<(usize, PathBuf)> = Vec::new();
    for dir in CRATES.iter().copied().chain(["tests", "sim/tests", "agents/tests", "gui/tests"]) {
        for f in rust_files(&repo().join(dir)) {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            sizes.push((lines, f.strip_prefix(repo()).unwrap().to_path_buf()));
        }
    }
    sizes.sort();
    let over_800: Vec<_> = sizes.iter().filter(|(n, _)| *n > 800).collect();
    let over_600: Vec<_> = sizes.iter().filter(|(n, _)| *n > 600).collect();
    assert!(over_800.is_empty(), "files over 800 lines: {over_800:?}");
    assert!(over_600.len() <= 3, "more than three files over 600 lines: {over_600:?}");
}

#[test]
fn the_front_end_has_at_most_twelve_rooms_and_the_architecture_is_a_ten_minute_read() {
    let rooms = std::fs::read_dir(repo().join("src")).unwrap().count();
    assert!(rooms <= 12, "src/ has {rooms} entries");
    let words = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap().split_whitespace().count();
    assert!(words <= 3000, "ARCHITECTURE.md has {words} words");
}
