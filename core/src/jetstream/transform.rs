//! Subject transforms: a source filter and a destination template, as used by a stream's
//! `subject_transform`, by mirror and source `subject_transforms` and by `republish`
//! (Go: server/subject_transform.go).
//!
//! The destination may name the source's `*` wildcards as `$n` or `{{wildcard(n)}}`
//! (1-based) and must end in `>` exactly when the source does. The partitioning and
//! splitting functions of nats-server (`{{partition(..)}}`, `{{split(..)}}`, …) are not
//! implemented: a destination using them is refused as an unknown function.

use crate::subject;

/// What a destination token becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Copied as is.
    Literal(String),
    /// The subject token at this index (the position of the n-th `*` of the source).
    Token(usize),
    /// The subject tokens from this index on (the source's `>`).
    Rest(usize),
}

/// A compiled transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    src: String,
    /// `None`: the subject is kept (an empty destination, or `>` to `>`).
    dest: Option<Vec<Part>>,
}

/// Go: `ErrBadSubject`.
const BAD_SUBJECT: &str = "invalid subject";
const BAD_DEST: &str = "invalid mapping destination";

/// `$n` or `{{ wildcard(n) }}` (any case): `Some(Ok(n))`; another `{{…}}` function: an error;
/// anything else: `None`.
fn placeholder(tok: &str) -> Option<Result<usize, String>> {
    if let Some(n) = tok.strip_prefix('$') {
        // Go leaves `$foo` alone: only `$<number>` is a placeholder.
        return n.parse::<usize>().ok().map(Ok);
    }
    let inner = tok.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let Some(open) = inner.find('(') else {
        return Some(Err(format!("{BAD_DEST}: unknown function in {tok}")));
    };
    let name = inner[..open].trim();
    let Some(args) = inner[open + 1..].strip_suffix(')') else {
        return Some(Err(format!("{BAD_DEST}: unknown function in {tok}")));
    };
    if !name.eq_ignore_ascii_case("wildcard") {
        return Some(Err(format!("{BAD_DEST}: unknown function in {tok}")));
    }
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    Some(match args.as_slice() {
        [""] => Err(format!(
            "{BAD_DEST}: not enough arguments passed to the function in {tok}"
        )),
        [one] => one.parse::<usize>().map_err(|_| {
            format!("{BAD_DEST}: function argument is invalid or in the wrong format in {tok}")
        }),
        _ => Err(format!(
            "{BAD_DEST}: too many arguments passed to the function in {tok}"
        )),
    })
}

impl Transform {
    /// Compiles `src` → `dest` (an empty `src` is `>`). Errors carry Go's texts.
    pub fn new(src: &str, dest: &str) -> Result<Self, String> {
        let src = if src.is_empty() { ">" } else { src };
        if !subject::is_valid_subject(src.as_bytes()) {
            return Err(BAD_SUBJECT.to_owned());
        }
        if dest.is_empty() || (src == ">" && dest == ">") {
            return Ok(Self {
                src: src.to_owned(),
                dest: None,
            });
        }
        let stoks: Vec<&str> = src.split('.').collect();
        let dtoks: Vec<&str> = dest.split('.').collect();
        let mustache = |t: &str| t.len() > 4 && t.starts_with("{{") && t.ends_with("}}");
        if dtoks.iter().any(|t| {
            t.is_empty() || *t == "*" || (!mustache(t) && t.contains([' ', '\t', '\r', '\n']))
        }) {
            return Err(BAD_SUBJECT.to_owned());
        }
        let src_fwc = stoks.last() == Some(&">");
        let dest_fwc = dtoks.last() == Some(&">");
        if src_fwc != dest_fwc || dtoks[..dtoks.len() - 1].contains(&">") {
            return Err(BAD_SUBJECT.to_owned());
        }
        // Positions of the source's `*` tokens, in order.
        let stars: Vec<usize> = stoks
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == "*")
            .map(|(i, _)| i)
            .collect();
        let mut parts = Vec::with_capacity(dtoks.len());
        for t in &dtoks {
            if *t == ">" {
                parts.push(Part::Rest(stoks.len() - 1));
                continue;
            }
            match placeholder(t) {
                None => parts.push(Part::Literal((*t).to_owned())),
                Some(Err(e)) => return Err(e),
                Some(Ok(n)) => match n.checked_sub(1).and_then(|i| stars.get(i)) {
                    Some(pos) => parts.push(Part::Token(*pos)),
                    None => {
                        return Err(format!(
                            "{BAD_DEST}: wildcard index out of range in {t}: [{n}]"
                        ))
                    }
                },
            }
        }
        Ok(Self {
            src: src.to_owned(),
            dest: Some(parts),
        })
    }

    /// The source filter.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Does `subj` pass the source filter?
    pub fn matches(&self, subj: &str) -> bool {
        subject::matches(self.src.as_bytes(), subj.as_bytes())
    }

    /// The transformed subject, or `None` when `subj` does not pass the source filter.
    pub fn apply(&self, subj: &str) -> Option<String> {
        if !self.matches(subj) {
            return None;
        }
        let Some(parts) = &self.dest else {
            return Some(subj.to_owned());
        };
        let toks: Vec<&str> = subj.split('.').collect();
        let mut out: Vec<&str> = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Part::Literal(s) => out.push(s),
                Part::Token(i) => out.push(toks.get(*i)?),
                Part::Rest(i) => out.extend(toks.get(*i..)?),
            }
        }
        Some(out.join("."))
    }
}

/// The first transform of `list` whose source passes `subj`, applied (Go: the sources'
/// `trs` loop). `None` when none passes.
pub fn apply_first(list: &[Transform], subj: &str) -> Option<String> {
    list.iter().find_map(|t| t.apply(subj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str, dest: &str) -> Transform {
        Transform::new(src, dest).unwrap()
    }

    #[test]
    fn literal_and_identity() {
        assert_eq!(t("foo", "bar").apply("foo").as_deref(), Some("bar"));
        assert_eq!(t("foo", "bar").apply("baz"), None);
        assert_eq!(t("", "").apply("a.b").as_deref(), Some("a.b"));
        assert_eq!(t(">", ">").apply("a.b").as_deref(), Some("a.b"));
        assert_eq!(t("a.*", "").apply("a.x").as_deref(), Some("a.x"));
        assert_eq!(t("a.*", "").apply("b.x"), None);
    }

    #[test]
    fn wildcards_by_position() {
        let tr = t("orders.*.*", "shipped.$2.{{wildcard(1)}}");
        assert_eq!(tr.apply("orders.eu.42").as_deref(), Some("shipped.42.eu"));
        let tr = t("a.*.b.*", "x.{{ Wildcard( 2 ) }}.{{wildcard(1)}}.y");
        assert_eq!(tr.apply("a.1.b.2").as_deref(), Some("x.2.1.y"));
        // A placeholder may be used twice or not at all.
        let tr = t("a.*.*", "b.$1.$1");
        assert_eq!(tr.apply("a.x.y").as_deref(), Some("b.x.x"));
    }

    #[test]
    fn full_wildcard_tail() {
        let tr = t("in.>", "out.>");
        assert_eq!(tr.apply("in.a.b.c").as_deref(), Some("out.a.b.c"));
        let tr = t("in.*.>", "out.$1.mid.>");
        assert_eq!(tr.apply("in.a.b.c").as_deref(), Some("out.a.mid.b.c"));
        let tr = t(">", "all.>");
        assert_eq!(tr.apply("x").as_deref(), Some("all.x"));
    }

    #[test]
    fn invalid_configs() {
        // `>` on one side only.
        assert_eq!(Transform::new("a.>", "b").unwrap_err(), "invalid subject");
        assert_eq!(Transform::new("a", "b.>").unwrap_err(), "invalid subject");
        // `*` in the destination.
        assert_eq!(Transform::new("a.*", "b.*").unwrap_err(), "invalid subject");
        assert_eq!(Transform::new("a..b", "c").unwrap_err(), "invalid subject");
        let e = Transform::new("a.*", "b.$2").unwrap_err();
        assert!(e.contains("wildcard index out of range"), "{e}");
        let e = Transform::new("a.*", "b.{{wildcard()}}").unwrap_err();
        assert!(e.contains("not enough arguments"), "{e}");
        let e = Transform::new("a.*", "b.{{wildcard(1,2)}}").unwrap_err();
        assert!(e.contains("too many arguments"), "{e}");
        let e = Transform::new("a.*", "b.{{wildcard(x)}}").unwrap_err();
        assert!(e.contains("invalid or in the wrong format"), "{e}");
        let e = Transform::new("a.*", "b.{{partition(3,1)}}").unwrap_err();
        assert!(e.contains("unknown function"), "{e}");
        // `$foo` is a literal token, as in Go.
        assert_eq!(t("a", "$foo").apply("a").as_deref(), Some("$foo"));
    }

    #[test]
    fn first_matching_of_a_list() {
        let list = vec![t("a.*", "x.$1"), t("b.*", "y.$1")];
        assert_eq!(apply_first(&list, "b.1").as_deref(), Some("y.1"));
        assert_eq!(apply_first(&list, "c.1"), None);
    }
}
