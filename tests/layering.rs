//! The layers only point down: domain ← store ← (peer client, exchange server) ← node ←
//! (workers, operator) ← app wiring ← cli, with presentation below both the CLI and the demo.
//! Each module's code (comments aside) may not name the layers above it, and the domain and the
//! node may not name the wire.

use std::path::{Path, PathBuf};

/// Layers above everything below the node.
const ABOVE_NODE: &[&str] = &[
    "crate::workers",
    "crate::operator",
    "crate::app",
    "crate::cli",
    "crate::demo",
    "crate::bench",
];

/// What each place may not name, beyond [`ABOVE_NODE`] where `below_node` says so.
struct Rule {
    /// A directory or file under `src/`.
    place: &'static str,
    /// Whether it sits below the node (and so may not name the node or anything above it).
    below_node: bool,
    /// Further names it may not use.
    forbidden: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        place: "domain",
        below_node: true,
        forbidden: &[
            "tonic",
            "prost",
            "sqlx",
            "tokio",
            "crate::node",
            "crate::store",
            "crate::exchange",
            "crate::peer",
            "crate::proto",
            "crate::tls",
            "crate::config",
            "crate::metrics",
            "prometheus",
        ],
    },
    Rule {
        place: "store",
        below_node: true,
        forbidden: &[
            "tonic",
            "crate::proto",
            "crate::node",
            "crate::exchange",
            "crate::peer",
        ],
    },
    Rule {
        place: "peer",
        below_node: true,
        forbidden: &["crate::node", "crate::store"],
    },
    Rule {
        place: "exchange",
        below_node: true,
        forbidden: &["crate::node", "crate::peer"],
    },
    Rule {
        place: "tls",
        below_node: true,
        forbidden: &["crate::node", "crate::store", "crate::exchange", "crate::peer"],
    },
    Rule {
        place: "config.rs",
        below_node: true,
        forbidden: &["crate::node", "crate::store", "crate::exchange", "crate::peer"],
    },
    Rule {
        place: "metrics",
        below_node: true,
        forbidden: &[
            "tonic",
            "crate::proto",
            "crate::exchange",
            "crate::peer",
            "crate::tls",
        ],
    },
    Rule {
        place: "node",
        below_node: false,
        forbidden: &[
            "tonic",
            "prost",
            "crate::proto",
            "crate::workers",
            "crate::operator",
            "crate::app",
            "crate::cli",
            "crate::demo",
            "crate::bench",
        ],
    },
    Rule {
        place: "workers",
        below_node: false,
        forbidden: &[
            "tonic",
            "crate::proto",
            "crate::operator",
            "crate::app",
            "crate::cli",
            "crate::demo",
            "crate::bench",
        ],
    },
    Rule {
        place: "operator",
        below_node: false,
        forbidden: &[
            "crate::workers",
            "crate::app",
            "crate::cli",
            "crate::demo",
            "crate::bench",
        ],
    },
    Rule {
        place: "present",
        below_node: false,
        forbidden: &["crate::app", "crate::cli", "crate::demo", "crate::bench"],
    },
    Rule {
        place: "demo",
        below_node: false,
        forbidden: &["crate::cli"],
    },
    Rule {
        place: "bench",
        below_node: false,
        forbidden: &["crate::cli"],
    },
];

fn rust_files(under: &Path, found: &mut Vec<PathBuf>) {
    if under.is_file() {
        found.push(under.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(under) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without its comments (doc links may name any layer).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` names `name` as a path (`tonic::`, `use tonic`, `crate::node::`, ...).
fn names(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        let starts_a_path = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let ends_a_segment = !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        (starts_a_path || name.starts_with("crate::")) && ends_a_segment
    })
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(rule.place), &mut files);
        assert!(!files.is_empty(), "src/{} has no Rust files", rule.place);
        let forbidden = rule
            .forbidden
            .iter()
            .chain(if rule.below_node { ABOVE_NODE } else { &[] });
        let forbidden: Vec<&&str> = forbidden.collect();
        for file in files {
            let code = code_of(&std::fs::read_to_string(&file).expect("readable source"));
            for name in &forbidden {
                if names(&code, name) {
                    violations.push(format!(
                        "{} names {name}",
                        file.strip_prefix(&src).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "modules naming a layer above them:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_check_sees_a_violation() {
    assert!(names("use tonic::Status;", "tonic"));
    assert!(names("let x = crate::node::Node::new();", "crate::node"));
    assert!(!names("use crate::nodes::X;", "crate::node"));
    assert!(!names("use tonic_health::pb;", "tonic"));
    assert!(!names("let my_tonic = 1;", "tonic"));
    assert!(!code_of("// see crate::node::Node").contains("crate::node"));
}
