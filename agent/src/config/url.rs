//! Camera URLs: validation and redaction. A camera URL often carries a password
//! (`rtsp://admin:secret@10.0.0.5/stream1`); only [`redact`]ed forms may reach a log, an error or
//! an MQTT message.

/// Why a camera URL is not usable. Messages never quote the user name or password.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UrlError {
    /// Not `rtsp://` or `rtsps://`.
    #[error("\"{0}\" is not an RTSP URL; it must start with rtsp:// or rtsps://")]
    Scheme(String),
    /// No host after the scheme.
    #[error("\"{0}\" has no host")]
    NoHost(String),
    /// Spaces or control characters.
    #[error(
        "\"{0}\" contains spaces or control characters; in a user name or password write a space as %20"
    )]
    BadChars(String),
    /// A character in `user:password` that must be percent-encoded.
    #[error(
        "\"{shown}\": the user name or password (everything before the last '@') contains {what}; \
             percent-encode it: {PERCENT_HELP} (an '@' of the path itself is written %40)"
    )]
    Userinfo {
        /// The redacted URL.
        shown: String,
        /// What it contains, e.g. `a raw '/'`.
        what: &'static str,
    },
    /// `user@host` without a password: GStreamer refuses such a URL.
    #[error(
        "\"{0}\": a user name needs a password (user:password@host; an empty one is user:@host)"
    )]
    NoPassword(String),
}

/// How to write the characters a password may hold in a URL.
pub const PERCENT_HELP: &str = "'/' as %2F, '@' as %40, '?' as %3F, '#' as %23, '%' as %25, a space as %20, \
     a non-ASCII character as its UTF-8 bytes (ä as %C3%A4)";

/// `(scheme with "://", user:password if any, host, port and path)`. The credentials are
/// everything up to the *last* `@`, whatever they contain: redaction must hold for a password
/// with a raw `/` or `@` too.
fn split(url: &str) -> (&str, Option<&str>, &str) {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    match rest.rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at + 1..]),
        None => (scheme, None, rest),
    }
}

/// What in `userinfo` GStreamer would misread, if anything.
fn userinfo_problem(userinfo: &str) -> Option<&'static str> {
    let b = userinfo.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let what = match c {
            b'/' => "a raw '/'",
            b'@' => "a raw '@'",
            b'?' => "a raw '?'",
            b'#' => "a raw '#'",
            b'%' if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) =>
            {
                "a '%' not followed by two hex digits"
            }
            c if !c.is_ascii() => "a non-ASCII character",
            _ => continue,
        };
        return Some(what);
    }
    None
}

/// Check that `url` is an RTSP URL with a host, and credentials GStreamer reads as written.
/// Errors quote the redacted URL.
pub fn check(url: &str) -> Result<(), UrlError> {
    let shown = redact(url);
    if !(url.starts_with("rtsp://") || url.starts_with("rtsps://")) {
        return Err(UrlError::Scheme(shown));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::BadChars(shown));
    }
    let (_, userinfo, rest) = split(url);
    if let Some(userinfo) = userinfo {
        if let Some(what) = userinfo_problem(userinfo) {
            return Err(UrlError::Userinfo { shown, what });
        }
        if !userinfo.contains(':') {
            return Err(UrlError::NoPassword(shown));
        }
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(UrlError::NoHost(shown));
    }
    Ok(())
}

/// The URL with any `user:password@` replaced by `***@`, safe to log.
pub fn redact(url: &str) -> String {
    match split(url) {
        (scheme, Some(_), rest) => format!("{scheme}***@{rest}"),
        (_, None, _) => url.to_string(),
    }
}

/// `host[:port]` and the path of a URL, without its credentials.
pub fn host_and_path(url: &str) -> &str {
    split(url).2
}

/// Remove a URL's credentials from free text (an error message from GStreamer may quote the
/// URL it was given, or the password as written or decoded): the full URL becomes its redacted
/// form, and the password, if any, `***`.
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    for password in passwords(url) {
        out = out.replace(password, "***");
        let decoded = percent_decode(password);
        if decoded.len() >= 3 {
            out = out.replace(&decoded, "***");
        }
    }
    out
}

/// Every string of `url` that may be its password, longest first: what follows the first ':'
/// of the credentials, taking these to end at the last '@' or at any earlier one (a malformed
/// URL whose path holds a raw '@' may be read either way). Only those of 3 bytes or more.
fn passwords(url: &str) -> Vec<&str> {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    let mut found: Vec<&str> = rest
        .match_indices('@')
        .filter_map(|(at, _)| rest[..at].split_once(':').map(|(_, p)| p))
        .filter(|p| p.len() >= 3)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// `%XX` escapes decoded (invalid ones kept as written; bytes that are not UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("rtsp://admin:s3cr@t@10.0.0.5:554/s1"),
            "rtsp://***@10.0.0.5:554/s1"
        );
        // Everything up to the last '@' is a credential, whatever it holds.
        assert_eq!(redact("rtsp://user@cam/a@b"), "rtsp://***@b");
        assert_eq!(
            redact("rtsp://tech:se/cr3tPW@10.0.0.5/s1"),
            "rtsp://***@10.0.0.5/s1"
        );
        assert_eq!(redact("rtsp://cam:554/live"), "rtsp://cam:554/live");
        assert_eq!(redact("http://u:p@x"), "http://***@x");
    }

    #[test]
    fn scrubs_text() {
        let url = "rtsp://admin:hunter2@10.0.0.5/s1";
        assert_eq!(
            scrub(
                "could not open rtsp://admin:hunter2@10.0.0.5/s1 (auth hunter2)",
                url
            ),
            "could not open rtsp://***@10.0.0.5/s1 (auth ***)"
        );
        assert_eq!(scrub("no creds here", "rtsp://cam/x"), "no creds here");
        // Written percent-encoded, quoted decoded (or the other way round).
        let url = "rtsp://tech:se%2Fcr%40t@10.0.0.5/s1";
        assert_eq!(
            scrub("401 for se/cr@t and se%2Fcr%40t", url),
            "401 for *** and ***"
        );
    }

    #[test]
    fn checks_urls() {
        assert!(check("rtsp://127.0.0.1:8554/plaza").is_ok());
        assert!(check("rtsps://u:p@cam.example/s").is_ok());
        assert_eq!(
            check("http://u:p@cam/x"),
            Err(UrlError::Scheme("http://***@cam/x".into()))
        );
        assert!(matches!(check("rtsp:///x"), Err(UrlError::NoHost(_))));
        assert!(matches!(
            check("rtsp://u:p@:554/x"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            check("rtsp://cam/a b"),
            Err(UrlError::BadChars(_))
        ));
    }

    #[test]
    fn passwords_gstreamer_would_misread_are_refused_without_quoting_them() {
        for (url, what) in [
            ("rtsp://tech:se/cr3tPW@10.0.0.5/s1", "a raw '/'"),
            ("rtsp://tech:s3cr@tPW@10.0.0.5/s1", "a raw '@'"),
            ("rtsp://tech:wh?tPW@10.0.0.5/s1", "a raw '?'"),
            (
                "rtsp://tech:50%offPW@10.0.0.5/s1",
                "a '%' not followed by two hex digits",
            ),
            ("rtsp://tech:päss@10.0.0.5/s1", "a non-ASCII character"),
        ] {
            let e = check(url).expect_err(url);
            assert_eq!(
                e,
                UrlError::Userinfo {
                    shown: "rtsp://***@10.0.0.5/s1".into(),
                    what
                },
                "{url}"
            );
            let text = e.to_string();
            assert!(
                text.contains("%2F") && !text.contains("PW") && !text.contains("päss"),
                "{text}"
            );
        }
        let spaced = check("rtsp://tech:my secret@10.0.0.5/s1").expect_err("space");
        assert!(!spaced.to_string().contains("secret"), "{spaced}");
        assert_eq!(
            check("rtsp://tech@10.0.0.5/s1"),
            Err(UrlError::NoPassword("rtsp://***@10.0.0.5/s1".into()))
        );
        // Percent-encoded, every one of them is fine; ':' needs no escape in a password.
        for ok in [
            "rtsp://tech:se%2Fcr%40t%3F%25%20p%C3%A4ss@10.0.0.5/s1",
            "rtsp://tech:a:b:c@10.0.0.5:8554/s1",
            "rtsp://tech:@10.0.0.5/s1",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_password_is_scrubbed_even_when_the_path_holds_a_raw_at() {
        // Found by the property test: the credentials end at the last '@', so the password
        // alone (up to the first '@') was left in the text.
        let raw = "rtsp://a:ZqAäAA@./@";
        let text = scrub(&format!("could not open {raw}: 401 for ZqAäAA"), raw);
        assert!(!text.contains("ZqAäAA"), "{text}");
        assert!(check(raw).is_err());
    }
}
