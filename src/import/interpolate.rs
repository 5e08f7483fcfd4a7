//! Compose's variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}` and `${VAR+alternative}`, with nested
//! references in the default and alternative. Variables come from the caller (the environment
//! the command runs in, then the project's `.env`).

use std::collections::BTreeMap;

/// Why a string could not be interpolated.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// `${VAR:?message}` (or `?`) with VAR unset (or empty).
    Required { var: String, message: String },
    /// A `${` without its `}`, or a name that is not one.
    Syntax(String),
}

/// Variables that were used but are not set: Compose substitutes an empty string and warns.
pub type Unset = Vec<String>;

pub fn interpolate(s: &str, vars: &BTreeMap<String, String>, unset: &mut Unset) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| Error::Syntax(format!("`${{{r}` has no closing }}")))?;
            out.push_str(&braced(&r[..end], vars, unset)?);
            rest = &r[end + 1..];
        } else {
            let len = name_len(rest);
            if len == 0 {
                // A lone `$` (before a space, a digit or the end) stays, as Compose keeps it.
                out.push('$');
            } else {
                out.push_str(&lookup(&rest[..len], vars, unset));
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing an expression that starts just after `${`, allowing nested `${…}`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_')).map_or(s.len(), |(i, _)| i)
}

fn lookup(name: &str, vars: &BTreeMap<String, String>, unset: &mut Unset) -> String {
    match vars.get(name) {
        Some(v) => v.clone(),
        None => {
            if !unset.iter().any(|u| u == name) {
                unset.push(name.to_owned());
            }
            String::new()
        }
    }
}

fn braced(expr: &str, vars: &BTreeMap<String, String>, unset: &mut Unset) -> Result<String, Error> {
    let len = name_len(expr);
    if len == 0 {
        return Err(Error::Syntax(format!("`${{{expr}}}` does not start with a variable name")));
    }
    let (name, op) = expr.split_at(len);
    let value = vars.get(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    // With `:`, an empty value counts as unset.
    let set = value.is_some_and(|v| !colon || !v.is_empty());
    let Some(kind) = op.chars().next() else {
        if colon {
            return Err(Error::Syntax(format!("`${{{expr}}}`: `:` must be followed by -, ? or +")));
        }
        return Ok(lookup(name, vars, unset));
    };
    let arg = &op[kind.len_utf8()..];
    match kind {
        '-' if set => Ok(value.cloned().unwrap_or_default()),
        '-' => interpolate(arg, vars, unset),
        '+' if set => interpolate(arg, vars, unset),
        '+' => Ok(String::new()),
        '?' if set => Ok(value.cloned().unwrap_or_default()),
        '?' => Err(Error::Required { var: name.to_owned(), message: interpolate(arg, vars, unset)? }),
        _ => Err(Error::Syntax(format!("`${{{expr}}}`: unknown operator after {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("TAG", "1.4"), ("EMPTY", ""), ("HOST", "db")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str) -> Result<(String, Unset), Error> {
        let mut unset = Vec::new();
        interpolate(s, &vars(), &mut unset).map(|v| (v, unset))
    }

    #[test]
    fn the_forms_compose_documents() {
        assert_eq!(i("app:$TAG").expect("test input").0, "app:1.4");
        assert_eq!(i("app:${TAG}-x").expect("test input").0, "app:1.4-x");
        assert_eq!(i("$$HOME and $$").expect("test input").0, "$HOME and $");
        assert_eq!(i("${NOPE:-2.0}").expect("test input").0, "2.0");
        assert_eq!(i("${EMPTY:-d}").expect("test input").0, "d");
        assert_eq!(i("${EMPTY-d}").expect("test input").0, "");
        assert_eq!(i("${TAG:+set}").expect("test input").0, "set");
        assert_eq!(i("${NOPE+set}").expect("test input").0, "");
        assert_eq!(i("${NOPE:-${HOST}:5432}").expect("test input").0, "db:5432");
        assert_eq!(i("cost $5").expect("test input").0, "cost $5");
    }

    #[test]
    fn unset_variables_are_empty_and_reported() {
        let (v, unset) = i("a${NOPE}b$ALSO_NOT").expect("test input");
        assert_eq!(v, "ab");
        assert_eq!(unset, vec!["NOPE".to_string(), "ALSO_NOT".to_string()]);
    }

    #[test]
    fn required_and_syntax_errors() {
        assert_eq!(
            i("${DB_PASSWORD:?set it in .env}").expect_err("must fail"),
            Error::Required { var: "DB_PASSWORD".into(), message: "set it in .env".into() }
        );
        assert!(matches!(i("${TAG"), Err(Error::Syntax(_))));
        assert!(matches!(i("${1x}"), Err(Error::Syntax(_))));
        assert!(matches!(i("${TAG:}"), Err(Error::Syntax(_))));
    }
}
