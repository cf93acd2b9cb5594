//! `--parameter-overrides` syntax, as SAM CLI accepts it: `Key=Value Key2='quoted value'`, or
//! CloudFormation's `ParameterKey=Key,ParameterValue=Value`.

/// Parses one overrides string into (key, value) pairs.
pub fn parse(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for token in split_words(input)? {
        if let Some(rest) = token.strip_prefix("ParameterKey=") {
            let Some((key, value)) = rest.split_once(",ParameterValue=") else {
                return Err(format!("`{token}` needs the form ParameterKey=Key,ParameterValue=Value"));
            };
            out.push((check_key(key, &token)?, value.to_string()));
            continue;
        }
        let Some((key, value)) = token.split_once('=') else {
            return Err(format!("`{token}` is not Key=Value; write overrides as Key=Value Key2=Value2"));
        };
        out.push((check_key(key, &token)?, value.to_string()));
    }
    Ok(out)
}

fn check_key(key: &str, token: &str) -> Result<String, String> {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("`{token}`: parameter names are letters and digits only"));
    }
    Ok(key.to_string())
}

/// Parses stack tags, `Key=Value ...` with the same quoting as overrides; tag keys may hold any
/// character but `=` and spaces.
pub fn parse_tags(input: &str) -> Result<Vec<(String, String)>, String> {
    split_words(input)?
        .into_iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("tag `{t}` is not Key=Value")),
        })
        .collect()
}

/// Splits on unquoted whitespace; single or double quotes group, backslash escapes.
fn split_words(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    cur.push(next);
                    in_word = true;
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed {q} quote in `{input}`"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn forms() {
        assert_eq!(parse("A=1 B=two").unwrap(), pairs(&[("A", "1"), ("B", "two")]));
        assert_eq!(parse("A='x y' B=\"p q\" C=a=b").unwrap(), pairs(&[("A", "x y"), ("B", "p q"), ("C", "a=b")]));
        assert_eq!(parse("A=").unwrap(), pairs(&[("A", "")]));
        assert_eq!(
            parse("ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=x,y").unwrap(),
            pairs(&[("A", "1"), ("B", "x,y")])
        );
        assert_eq!(parse("A=x\\ y").unwrap(), pairs(&[("A", "x y")]));
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tags("team=core 'aws:cost-center'=\"a b\"").unwrap(),
            pairs(&[("team", "core"), ("aws:cost-center", "a b")])
        );
        assert!(parse_tags("novalue").unwrap_err().contains("Key=Value"));
    }

    #[test]
    fn errors() {
        assert!(parse("A").unwrap_err().contains("Key=Value"));
        assert!(parse("A='x").unwrap_err().contains("unclosed"));
        assert!(parse("A-b=1").unwrap_err().contains("letters and digits"));
        assert!(parse("ParameterKey=A").unwrap_err().contains("ParameterValue"));
    }
}
