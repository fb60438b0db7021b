//! Camera URLs: validation and redaction. A camera URL often carries a password
//! (`rtsp://admin:secret@10.0.0.5/stream1`); only [`redact`]ed forms may reach a log, an error or
//! an MQTT message.

/// Why a camera URL is not usable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UrlError {
    /// Not `rtsp://` or `rtsps://`.
    #[error("\"{0}\" is not an RTSP URL; it must start with rtsp:// or rtsps://")]
    Scheme(String),
    /// No host after the scheme.
    #[error("\"{0}\" has no host")]
    NoHost(String),
    /// Spaces or control characters.
    #[error("\"{0}\" contains spaces or control characters")]
    BadChars(String),
}

/// Check that `url` is an RTSP URL with a host. Errors quote the redacted URL.
pub fn check(url: &str) -> Result<(), UrlError> {
    let shown = redact(url);
    let rest = url
        .strip_prefix("rtsp://")
        .or_else(|| url.strip_prefix("rtsps://"))
        .ok_or_else(|| UrlError::Scheme(shown.clone()))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::BadChars(shown));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(UrlError::NoHost(shown));
    }
    Ok(())
}

/// The URL with any `user:password@` replaced by `***@`, safe to log.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}***@{}{}", &authority[at + 1..], &rest[end..]),
        None => url.to_string(),
    }
}

/// Remove a URL's credentials from free text (an error message from GStreamer may quote the
/// URL it was given): the full URL becomes its redacted form, and the password, if any, `***`.
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && password.len() >= 3
        {
            out = out.replace(password, "***");
        }
    }
    out
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
        assert_eq!(redact("rtsp://user@cam/a@b"), "rtsp://***@cam/a@b");
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
}
