//! A Compose file as a small tree whose every node knows where it is in the file.
//!
//! saphyr parses (YAML 1.2, anchors and aliases expanded with its "billion laughs" budget,
//! duplicate keys refused); this module turns its nodes into [`Node`]s with byte offsets, so
//! diagnostics can use [`crate::diag::Diagnostic::at`], and applies Compose's merge keys (`<<`).

use std::ops::Range;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// What a YAML node holds. Scalars keep the text they were written with, so `8080:80` or `010`
/// reach the converter as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Integers and floats, as written.
    Number(String),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in the order written, each with its own span.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Range<usize>,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(m) => m,
            _ => &[],
        }
    }

    /// A scalar as text (strings, numbers, booleans); None for null, lists and maps.
    pub fn scalar(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Number(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Where parsing failed.
#[derive(Debug)]
pub struct ParseError {
    pub message: String,
    pub at: usize,
}

/// Parses `text` (one YAML document) into a [`Node`].
pub fn parse(text: &str) -> Result<Node, ParseError> {
    // saphyr's markers count characters; diagnostics want byte offsets.
    let offsets: Vec<usize> =
        text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect();
    let byte = |chars: usize| offsets.get(chars).copied().unwrap_or(text.len());
    let docs = MarkedYaml::load_from_str(text)
        .map_err(|e| ParseError { message: e.info().to_owned(), at: byte(e.marker().index()) })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Ok(Node { value: Value::Null, span: 0..0 });
    };
    if let Some(second) = docs.next() {
        return Err(ParseError {
            message: "a Compose file holds one YAML document; this is a second one".into(),
            at: byte(second.span.start.index()),
        });
    }
    convert(&doc, &byte)
}

fn convert(y: &MarkedYaml<'_>, byte: &dyn Fn(usize) -> usize) -> Result<Node, ParseError> {
    let span = byte(y.span.start.index())..byte(y.span.end.index()).max(byte(y.span.start.index()));
    let value = match &y.data {
        YamlData::Value(s) => scalar(s),
        YamlData::Representation(text, _, _) => Value::Str(text.to_string()),
        YamlData::Sequence(items) => {
            Value::Seq(items.iter().map(|i| convert(i, byte)).collect::<Result<_, _>>()?)
        }
        YamlData::Mapping(map) => {
            let mut own: Vec<(Key, Node)> = Vec::new();
            let mut merged: Vec<(Key, Node)> = Vec::new();
            for (k, v) in map {
                let key_span = byte(k.span.start.index())..byte(k.span.end.index());
                let name = match &k.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(s) => match scalar(s) {
                        Value::Number(n) => n,
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(ParseError {
                                message: "a mapping key must be a string".into(),
                                at: key_span.start,
                            })
                        }
                    },
                    _ => {
                        return Err(ParseError {
                            message: "a mapping key must be a string".into(),
                            at: key_span.start,
                        })
                    }
                };
                let value = convert(v, byte)?;
                if name == "<<" {
                    // Compose's merge key: the mappings' entries come in unless written here.
                    let sources = match value.value {
                        Value::Map(_) => vec![value],
                        Value::Seq(items) => items,
                        _ => {
                            return Err(ParseError {
                                message: "<< (merge) takes a mapping or a list of mappings".into(),
                                at: value.span.start,
                            })
                        }
                    };
                    for source in sources {
                        let Value::Map(entries) = source.value else {
                            return Err(ParseError {
                                message: "<< (merge) takes a mapping or a list of mappings".into(),
                                at: source.span.start,
                            });
                        };
                        for (k, v) in entries {
                            if !merged.iter().any(|(m, _)| m.name == k.name) {
                                merged.push((k, v));
                            }
                        }
                    }
                } else {
                    own.push((Key { name, span: key_span }, value));
                }
            }
            for (k, v) in merged {
                if !own.iter().any(|(o, _)| o.name == k.name) {
                    own.push((k, v));
                }
            }
            Value::Map(own)
        }
        YamlData::Tagged(_, inner) => return convert(inner, byte),
        YamlData::Alias(_) | YamlData::BadValue => {
            return Err(ParseError { message: "a value YAML cannot read".into(), at: span.start })
        }
    };
    Ok(Node { value, span })
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number(i.to_string()),
        Scalar::FloatingPoint(f) => Value::Number(f.to_string()),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_byte_offsets_and_merge_keys_apply() {
        let text = "x-base: &b\n  image: \"é:1\"\n  user: a\nservices:\n  web:\n    <<: *b\n    user: b\n";
        let n = parse(text).expect("test input");
        let web = n.get("services").expect("test input").get("web").expect("test input");
        assert_eq!(
            web.get("user").expect("test input").scalar().as_deref(),
            Some("b"),
            "own keys win over merged"
        );
        let image = web.get("image").expect("test input");
        assert_eq!(image.scalar().as_deref(), Some("é:1"));
        assert_eq!(&text[image.span.start..image.span.start + 1], "\"");
    }

    #[test]
    fn errors_have_a_position_and_duplicates_are_refused() {
        let e = parse("services:\n  web: [\n").expect_err("must fail");
        assert!(e.at > 0, "{e:?}");
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n").expect_err("must fail").message.contains("second"));
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 { "a".to_owned() } else { format!("l{}", i - 1) };
            text.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(parse(&text).is_err());
    }

    #[test]
    fn scalars_keep_their_text() {
        let n = parse("p: 8080:80\nq: 010\nr: true\ns: ~\n").expect("test input");
        assert_eq!(n.get("p").expect("test input").scalar().as_deref(), Some("8080:80"));
        assert_eq!(n.get("r").expect("test input").value, Value::Bool(true));
        assert_eq!(n.get("s").expect("test input").value, Value::Null);
    }
}
