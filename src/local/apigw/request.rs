//! The request as the local server received it, before any API Gateway rule applies, and the
//! decoding API Gateway does on one: percent-escapes, query strings, cookies, media types.

/// One HTTP request, as received: nothing decoded, headers in order with repeats kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HttpRequest {
    /// As sent (`GET`); compared without regard to case.
    pub method: String,
    /// The path as received, percent-escapes and all (`/users/a%20b`), starting with `/`.
    pub path: String,
    /// The raw query string without the `?`; empty when there is none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address (`127.0.0.1`).
    pub source_ip: String,
    /// The Host header as sent, port included (`127.0.0.1:3000`).
    pub host: String,
    /// `HTTP/1.1`.
    pub protocol: String,
}

impl HttpRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The Content-Type's media type, lower-cased and without parameters (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        (!media.is_empty()).then_some(media)
    }

    /// The query string's pairs, decoded, in order: `a=1&b&a=2` gives `a=1`, `b=`, `a=2`.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k, true), decode(v, true))
            })
            .collect()
    }

    /// The cookies of every Cookie header, `name=value` each, as sent (payload 2.0's `cookies`).
    pub fn cookies(&self) -> Vec<String> {
        self.header_values("cookie")
            .flat_map(|h| h.split(';'))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The port the client addressed, from the Host header (80 when it names none).
    pub fn port(&self) -> u16 {
        let after_bracket = self.host.rsplit_once(']').map_or(self.host.as_str(), |(_, rest)| rest);
        after_bracket.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(80)
    }

    /// The Host header without its port.
    pub fn hostname(&self) -> &str {
        if let Some(end) = self.host.find(']') {
            return &self.host[..=end];
        }
        self.host.rsplit_once(':').map_or(self.host.as_str(), |(h, _)| h)
    }

    /// The path with percent-escapes decoded (a `+` stays a `+` in a path).
    pub fn decoded_path(&self) -> String {
        percent_decode(&self.path)
    }
}

/// Decodes `%XX` escapes; bytes that do not form UTF-8 become U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let c = *b?;
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Whether media type `media` (lower-case, no parameters) is covered by `pattern` as API
/// Gateway reads BinaryMediaTypes: exact, `type/*`, or `*/*`.
pub(crate) fn media_type_matches(pattern: &str, media: &str) -> bool {
    let pattern = pattern.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if pattern == "*/*" || pattern == media {
        return true;
    }
    match (pattern.split_once('/'), media.split_once('/')) {
        (Some((pt, "*")), Some((mt, _))) => pt == mt,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            host: "127.0.0.1:3000".into(),
            ..HttpRequest::default()
        }
    }

    #[test]
    fn headers_are_found_in_any_case_and_in_order() {
        let r = req(&[("X-A", "1"), ("x-a", "2"), ("B", "3")]);
        assert_eq!(r.header("x-A"), Some("1"));
        assert_eq!(r.header_values("X-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.header("c"), None);
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        let r = req(&[("Content-Type", "Application/JSON; charset=utf-8")]);
        assert_eq!(r.media_type().as_deref(), Some("application/json"));
        assert_eq!(req(&[]).media_type(), None);
    }

    #[test]
    fn query_pairs_decode_and_keep_order_and_repeats() {
        let r = HttpRequest { query: "a=1&b&a=x%20y+z&&c=%2F".into(), ..HttpRequest::default() };
        let pairs = r.query_pairs();
        let expected = [("a", "1"), ("b", ""), ("a", "x y z"), ("c", "/")];
        assert_eq!(pairs.len(), expected.len());
        for ((k, v), (ek, ev)) in pairs.iter().zip(expected) {
            assert_eq!((k.as_str(), v.as_str()), (ek, ev));
        }
    }

    #[test]
    fn cookies_come_from_every_cookie_header() {
        let r = req(&[("Cookie", "a=1; b=2"), ("cookie", "c=3;")]);
        assert_eq!(r.cookies(), ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn port_and_hostname_from_host() {
        let mut r = req(&[]);
        assert_eq!((r.port(), r.hostname()), (3000, "127.0.0.1"));
        r.host = "localhost".into();
        assert_eq!((r.port(), r.hostname()), (80, "localhost"));
        r.host = "[::1]:8080".into();
        assert_eq!((r.port(), r.hostname()), (8080, "[::1]"));
        r.host = "[::1]".into();
        assert_eq!((r.port(), r.hostname()), (80, "[::1]"));
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes_and_plus_in_paths() {
        assert_eq!(percent_decode("/a%20b/c+d"), "/a b/c+d");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn binary_media_types_match_exactly_or_by_wildcard() {
        assert!(media_type_matches("image/png", "image/png"));
        assert!(media_type_matches("image/*", "image/jpeg"));
        assert!(media_type_matches("*/*", "text/plain"));
        assert!(media_type_matches("Application/Octet-Stream", "application/octet-stream"));
        assert!(!media_type_matches("image/png", "image/jpeg"));
        assert!(!media_type_matches("image/*", "text/plain"));
    }
}
