//! Rust source as tokens: identifiers, `::`, punctuation and string literals, with comments,
//! chars, lifetimes and numbers dropped. Enough to find paths; not a full lexer.

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    Str(String),
    /// Numbers, chars, lifetimes: nothing a path can be made of.
    Other,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
}

/// Splits Rust source into tokens, dropping comments and whitespace.
pub(super) fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let push = |out: &mut Vec<Token>, tok: Tok, line: usize| out.push(Token { tok, line });
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let (s, next) = quoted(&c, i + 1, &mut line);
            push(&mut out, Tok::Str(s), start);
            i = next;
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
            push(&mut out, Tok::Other, line);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            let str_prefix = raw_prefix || matches!(word.as_str(), "b" | "c");
            if str_prefix && c.get(i) == Some(&'"') {
                let start_line = line;
                let (s, next) = if raw_prefix {
                    raw_quoted(&c, i, 0, &mut line)
                } else {
                    quoted(&c, i + 1, &mut line)
                };
                push(&mut out, Tok::Str(s), start_line);
                i = next;
            } else if raw_prefix && c.get(i) == Some(&'#') {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    let start_line = line;
                    let (s, next) = raw_quoted(&c, i + hashes, hashes, &mut line);
                    push(&mut out, Tok::Str(s), start_line);
                    i = next;
                } else if word == "r" && hashes == 1 {
                    // A raw identifier, r#type.
                    let s = i + 1;
                    i = s;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    push(&mut out, Tok::Ident(c[s..i].iter().collect()), line);
                } else {
                    push(&mut out, Tok::Ident(word), line);
                }
            } else if word == "b" && c.get(i) == Some(&'\'') {
                // A byte literal b'x' or b'\n'.
                let mut j = i + 1;
                if c.get(j) == Some(&'\\') {
                    j += 1;
                }
                j += 1;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                push(&mut out, Tok::Other, line);
            } else {
                push(&mut out, Tok::Ident(word), line);
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            push(&mut out, Tok::Other, line);
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            push(&mut out, Tok::PathSep, line);
            i += 2;
        } else {
            push(&mut out, Tok::Punct(ch), line);
            i += 1;
        }
    }
    out
}

/// The body of a `"…"` literal starting after its opening quote; returns it and the index after
/// the closing quote.
fn quoted(c: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        } else {
            if c[i] == '\n' {
                *line += 1;
            }
            s.push(c[i]);
        }
        i += 1;
    }
    (s, i + 1)
}

/// A raw literal whose opening quote is at `i`, closed by a quote and `hashes` `#`s.
fn raw_quoted(c: &[char], i: usize, hashes: usize, line: &mut usize) -> (String, usize) {
    let mut j = i + 1;
    let mut s = String::new();
    while j < c.len() {
        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
            return (s, j + 1 + hashes);
        }
        if c[j] == '\n' {
            *line += 1;
        }
        s.push(c[j]);
        j += 1;
    }
    (s, j)
}
