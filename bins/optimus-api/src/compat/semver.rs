//! node-semver ranges, as Piston matches a requested `version` against its
//! runtimes: a bare `3.11.2` is exactly that version (where Cargo's `semver`
//! would read `^3.11.2`), `3.11` and `3.x` are any 3.11 / any 3, and `*`, `^`, `~`,
//! comparisons, hyphen ranges, space (and) and `||` (or) work as in npm.
//! Pre-release tags are not matched (no runtime has one), nor is a version part
//! of 2^64-1 or more.

type Version = (u64, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A parsed range: any of several sets, each satisfied when all its comparators are.
#[derive(Debug, Clone, PartialEq)]
pub struct Range(Vec<Vec<(Op, Version)>>);

/// A version with some parts left out or wild (`1`, `1.2`, `1.x`, `*`).
#[derive(Debug, Clone, Copy)]
struct Partial {
    parts: [Option<u64>; 3],
}

impl Partial {
    fn parse(s: &str) -> Option<Partial> {
        let s = s.trim().trim_start_matches(['v', '=']).trim();
        // Build metadata and pre-release tags are ignored.
        let s = s.split(['+', '-']).next()?;
        let mut parts = [None; 3];
        if s.is_empty() {
            return Some(Partial { parts });
        }
        let pieces: Vec<&str> = s.split('.').collect();
        if pieces.len() > 3 {
            return None;
        }
        for (i, piece) in pieces.iter().enumerate() {
            match *piece {
                "x" | "X" | "*" => break,
                // Below u64::MAX, so that the first version past any bound exists.
                n => parts[i] = Some(n.parse().ok().filter(|n| *n < u64::MAX)?),
            }
        }
        Some(Partial { parts })
    }

    /// How many leading parts are given.
    fn given(&self) -> usize {
        self.parts.iter().take_while(|p| p.is_some()).count()
    }

    fn floor(&self) -> Version {
        (self.parts[0].unwrap_or(0), self.parts[1].unwrap_or(0), self.parts[2].unwrap_or(0))
    }

    /// The first version past every version this partial covers (`None`: no bound).
    fn ceiling(&self) -> Option<Version> {
        let (a, b, _) = self.floor();
        match self.given() {
            0 => None,
            1 => Some((a + 1, 0, 0)),
            2 => Some((a, b + 1, 0)),
            _ => None,
        }
    }
}

impl Range {
    pub fn parse(text: &str) -> Option<Range> {
        text.split("||").map(parse_set).collect::<Option<Vec<_>>>().map(Range)
    }

    pub fn matches(&self, version: &str) -> bool {
        let Some(p) = Partial::parse(version) else { return false };
        if p.given() != 3 {
            return false;
        }
        let v = p.floor();
        self.0.iter().any(|set| {
            set.iter().all(|(op, bound)| match op {
                Op::Lt => v < *bound,
                Op::Le => v <= *bound,
                Op::Gt => v > *bound,
                Op::Ge => v >= *bound,
                Op::Eq => v == *bound,
            })
        })
    }
}

fn parse_set(text: &str) -> Option<Vec<(Op, Version)>> {
    let text = text.trim();
    if let Some((low, high)) = text.split_once(" - ") {
        let (low, high) = (Partial::parse(low)?, Partial::parse(high)?);
        let mut set = vec![(Op::Ge, low.floor())];
        match (high.given(), high.ceiling()) {
            (3, _) => set.push((Op::Le, high.floor())),
            (_, Some(ceiling)) => set.push((Op::Lt, ceiling)),
            _ => {}
        }
        return Some(set);
    }
    // Operators may be written apart from their version (">= 1.2.3").
    let mut tokens: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match tokens.last_mut() {
            Some(last) if matches!(last.as_str(), "<" | "<=" | ">" | ">=" | "=" | "~" | "^") => last.push_str(word),
            _ => tokens.push(word.to_string()),
        }
    }
    let mut set = Vec::new();
    for token in &tokens {
        comparator(token, &mut set)?;
    }
    Some(set)
}

fn comparator(token: &str, set: &mut Vec<(Op, Version)>) -> Option<()> {
    let (op, rest) = ["<=", ">=", "<", ">", "=", "~>", "~", "^"]
        .iter()
        .find_map(|op| token.strip_prefix(op).map(|rest| (*op, rest)))
        .unwrap_or(("", token));
    let p = Partial::parse(rest)?;
    let floor = p.floor();
    let given = p.given();
    match op {
        "" | "=" => match (given, p.ceiling()) {
            (3, _) => set.push((Op::Eq, floor)),
            (_, Some(ceiling)) => set.extend([(Op::Ge, floor), (Op::Lt, ceiling)]),
            _ => {}
        },
        "~" | "~>" => {
            let ceiling = if given >= 2 { (floor.0, floor.1 + 1, 0) } else { (floor.0 + 1, 0, 0) };
            if given > 0 {
                set.extend([(Op::Ge, floor), (Op::Lt, ceiling)]);
            }
        }
        "^" => {
            let ceiling = match (floor, given) {
                (_, 0) => None,
                ((a, _, _), _) if a > 0 || given == 1 => Some((a + 1, 0, 0)),
                ((0, b, _), _) if b > 0 || given == 2 => Some((0, b + 1, 0)),
                ((0, 0, c), _) => Some((0, 0, c + 1)),
                _ => None,
            };
            if let Some(ceiling) = ceiling {
                set.extend([(Op::Ge, floor), (Op::Lt, ceiling)]);
            }
        }
        ">" => match (given, p.ceiling()) {
            (0, _) => set.push((Op::Lt, (0, 0, 0))),
            (3, _) => set.push((Op::Gt, floor)),
            (_, Some(ceiling)) => set.push((Op::Ge, ceiling)),
            _ => {}
        },
        ">=" => set.push((Op::Ge, floor)),
        "<" => set.push((Op::Lt, floor)),
        "<=" => match (given, p.ceiling()) {
            (0, _) => {}
            (3, _) => set.push((Op::Le, floor)),
            (_, Some(ceiling)) => set.push((Op::Lt, ceiling)),
            _ => {}
        },
        _ => return None,
    }
    Some(())
}

/// Whether `version` satisfies `range`; a range that does not parse matches nothing.
pub fn satisfies(version: &str, range: &str) -> bool {
    Range::parse(range).is_some_and(|r| r.matches(version))
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn a_bare_version_is_exactly_that_version() {
        assert!(satisfies("3.11.2", "3.11.2"));
        assert!(!satisfies("3.11.3", "3.11.2"));
        assert!(satisfies("3.11.2", "=3.11.2"));
        assert!(satisfies("3.11.2", "v3.11.2"));
    }

    #[test]
    fn partials_and_wildcards_cover_their_span() {
        for range in ["*", "", "x", "3", "3.x", "3.11", "3.11.x", "3.*"] {
            assert!(satisfies("3.11.2", range), "{range}");
        }
        assert!(!satisfies("3.12.0", "3.11"));
        assert!(!satisfies("4.0.0", "3.x"));
    }

    #[test]
    fn carets_tildes_and_comparisons() {
        assert!(satisfies("1.85.0", "^1.40.0"));
        assert!(!satisfies("2.0.0", "^1.40.0"));
        assert!(satisfies("0.2.5", "^0.2.3"));
        assert!(!satisfies("0.3.0", "^0.2.3"));
        assert!(!satisfies("0.0.4", "^0.0.3"));
        assert!(satisfies("3.11.9", "~3.11.2"));
        assert!(!satisfies("3.12.0", "~3.11.2"));
        assert!(satisfies("18.20.4", ">=18"));
        assert!(satisfies("18.20.4", ">= 18.0.0 <19"));
        assert!(!satisfies("19.0.0", ">=18.0.0 <19"));
        assert!(satisfies("12.2.0", ">12.1"));
        assert!(!satisfies("12.1.9", ">12.1"));
        assert!(satisfies("12.1.9", "<=12.1"));
        assert!(!satisfies("12.2.0", "<=12.1"));
    }

    #[test]
    fn hyphens_and_alternatives() {
        assert!(satisfies("1.19.8", "1.18 - 1.20"));
        assert!(!satisfies("1.21.0", "1.18 - 1.20"));
        assert!(satisfies("1.20.5", "1.18.0 - 1.20"));
        assert!(!satisfies("1.20.5", "1.18.0 - 1.20.4"));
        assert!(satisfies("5.2.15", "4.x || 5.x"));
        assert!(!satisfies("6.0.0", "4.x || 5.x"));
    }

    #[test]
    fn nonsense_matches_nothing() {
        assert!(!satisfies("3.11.2", "latest"));
        assert!(!satisfies("3.11.2", "3.11.2.1"));
        assert!(!satisfies("3.11.2", ">>3"));
    }

    #[test]
    fn the_largest_parts_bound_without_overflow() {
        // Found by the piston fuzz target: `^` past 2^64-1 wrapped to 0.0.0 (and
        // panicked in a debug build). Such a part is refused; the one below it works.
        let max = u64::MAX;
        assert!(!satisfies(&format!("{max}.0.0"), &format!("^{max}.0.0")));
        for range in ["^{n}.1.2", "~{n}.1", "{n}.x", "<={n}", ">{n}.0", "{n} - {n}.1"] {
            let range = range.replace("{n}", &(max - 1).to_string());
            assert!(satisfies(&format!("{}.1.2", max - 1), &range), "{range}");
        }
    }
}
