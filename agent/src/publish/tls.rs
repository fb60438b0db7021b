//! Broker security: TLS (a CA file or the system's roots, optional client certificate for
//! mutual TLS) and username/password with the password read from a file. Everything is read
//! and checked once at start, so that a wrong path, an unreadable certificate or a secrets file
//! other users can read stops the agent with a clear message instead of failing at every
//! reconnect. Verification of the broker's certificate is on unless `insecure_skip_verify` is
//! set, which is warned about at every start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::{BrokerEndpoint, Mqtt};

/// Why the broker settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A file cannot be read.
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        /// Config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secrets file is readable by group or others.
    #[error(
        "{key}: {path} is readable by other users (mode {mode:04o}); it holds a secret: run `chmod 600 {path}` (and make the vigil user its owner)"
    )]
    Exposed {
        /// Config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A PEM file holds nothing usable.
    #[error("{key}: {path}: {what}")]
    Pem {
        /// Config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the combination.
    #[error("mqtt.tls: {0}")]
    Config(String),
}

/// What the session needs to connect: the TLS configuration (if any) and the credentials.
#[derive(Clone, Default)]
pub struct Security {
    /// TLS client configuration; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The TLS configuration for each `tls_name` of `mqtt.brokers`.
    pub named: Vec<(String, Arc<rustls::ClientConfig>)>,
    /// Username and password.
    pub credentials: Option<(String, String)>,
}

impl Security {
    /// The security of a connection to `broker`: its own TLS name's configuration where it has
    /// one.
    pub fn for_broker(&self, broker: &BrokerEndpoint) -> Security {
        let mut s = self.clone();
        if let Some(name) = &broker.tls_name
            && let Some((_, c)) = self.named.iter().find(|(n, _)| n == name)
        {
            s.tls = Some(Arc::clone(c));
        }
        s
    }

    /// TLS (when configured) and credentials on MQTT 3.1.1 connection options.
    pub fn apply(&self, o: &mut rumqttc::MqttOptions) {
        if let Some(t) = self.transport() {
            o.set_transport(t);
        }
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user.clone(), password.clone());
        }
    }

    /// TLS (when configured) and credentials on MQTT 5 connection options.
    pub fn apply5(&self, o: &mut rumqttc::v5::MqttOptions) {
        if let Some(t) = self.transport() {
            o.set_transport(t);
        }
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user.clone(), password.clone());
        }
    }

    fn transport(&self) -> Option<rumqttc::Transport> {
        self.tls.as_ref().map(|tls| {
            rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::clone(tls)))
        })
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

/// Read and check the broker settings; relative paths are resolved with `resolve`.
pub fn load(mqtt: &Mqtt, resolve: impl Fn(&Path) -> PathBuf) -> Result<Security, SecurityError> {
    let credentials = match (&mqtt.username, &mqtt.password_file) {
        (Some(user), Some(file)) => {
            let path = resolve(file);
            let text = read_secret("mqtt.password_file", &path)?;
            let password = String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            Some((user.clone(), password))
        }
        (Some(user), None) => Some((user.clone(), String::new())),
        _ => None,
    };
    let Some(t) = &mqtt.tls else {
        return Ok(Security {
            tls: None,
            named: Vec::new(),
            credentials,
        });
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| SecurityError::Config(e.to_string()))?;
    let roots = if t.insecure_skip_verify {
        tracing::warn!(
            "mqtt.tls.insecure_skip_verify is set: the broker's certificate is NOT verified; anyone on the network path can impersonate the broker"
        );
        None
    } else {
        Some(Arc::new(roots(t.ca_file.as_deref(), &resolve)?))
    };
    let builder = match &roots {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(Arc::clone(&provider)))),
        Some(r) => builder.with_root_certificates(Arc::clone(r)),
    };
    let config = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            let chain = certs("mqtt.tls.cert_file", &resolve(cert))?;
            let key_path = resolve(key);
            let pem = read_secret("mqtt.tls.key_file", &key_path)?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| SecurityError::Pem {
                key: "mqtt.tls.key_file",
                path: key_path.clone(),
                what: format!("no private key in PEM form ({e})"),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| SecurityError::Config(format!("client certificate and key: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    let named = match roots {
        Some(roots) => renamed(mqtt, &config, &roots, &provider)?,
        None => Vec::new(),
    };
    Ok(Security {
        tls: Some(Arc::new(config)),
        named,
        credentials,
    })
}

/// The CA certificates that sign the broker's: `ca_file`, or the system's.
fn roots(
    ca_file: Option<&Path>,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<rustls::RootCertStore, SecurityError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(ca) => {
            let path = resolve(ca);
            for cert in certs("mqtt.tls.ca_file", &path)? {
                roots.add(cert).map_err(|e| SecurityError::Pem {
                    key: "mqtt.tls.ca_file",
                    path: path.clone(),
                    what: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(SecurityError::Config(
                    "no ca_file given and no system CA certificates found (install ca-certificates, or set mqtt.tls.ca_file)".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// One TLS configuration per `tls_name` of `mqtt.brokers`: `config` with a verifier that
/// checks the broker's certificate against that name instead of the host connected to.
fn renamed(
    mqtt: &Mqtt,
    config: &rustls::ClientConfig,
    roots: &Arc<rustls::RootCertStore>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Vec<(String, Arc<rustls::ClientConfig>)>, SecurityError> {
    let mut named = Vec::new();
    for name in mqtt.brokers.iter().filter_map(|b| b.tls_name.as_ref()) {
        let server_name = ServerName::try_from(name.clone()).map_err(|e| {
            SecurityError::Config(format!(
                "tls_name {name:?} is not a DNS name or address: {e}"
            ))
        })?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::clone(roots),
            Arc::clone(provider),
        )
        .build()
        .map_err(|e| SecurityError::Config(e.to_string()))?;
        let mut c = config.clone();
        c.dangerous()
            .set_certificate_verifier(Arc::new(Renamed { inner, server_name }));
        named.push((name.clone(), Arc::new(c)));
    }
    Ok(named)
}

/// Verifies the broker's certificate as the usual verifier does, for a configured name
/// (`mqtt.brokers[].tls_name`) instead of the host the connection went to.
#[derive(Debug)]
struct Renamed {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    server_name: ServerName<'static>,
}

impl rustls::client::danger::ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// Read a secrets file, refusing one that group or others may read.
fn read_secret(key: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| SecurityError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecurityError::Exposed {
            key,
            path: path.to_path_buf(),
            mode,
        });
    }
    read(key, path)
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let pem = read(key, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SecurityError::Pem {
            key,
            path: path.to_path_buf(),
            what: format!("unreadable PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(SecurityError::Pem {
            key,
            path: path.to_path_buf(),
            what: "no certificate in PEM form".into(),
        });
    }
    Ok(certs)
}

/// Accepts any server certificate (only with `insecure_skip_verify`), still checking that the
/// handshake signatures are valid.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsSettings;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn write(path: &Path, body: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, body).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_password_file_others_can_read_is_refused_and_a_private_one_is_used() {
        let d = dir("pw");
        let pw = d.join("password");
        write(&pw, "s3cret\n", 0o640);
        let mqtt = Mqtt {
            username: Some("box".into()),
            password_file: Some(pw.clone()),
            ..Mqtt::default()
        };
        let e = load(&mqtt, |p| p.to_path_buf()).expect_err("group-readable");
        let msg = e.to_string();
        assert!(
            msg.contains("mode 0640") && msg.contains("chmod 600"),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"));
        write(&pw, "s3cret\n", 0o600);
        let s = load(&mqtt, |p| p.to_path_buf()).expect("private");
        assert_eq!(s.credentials, Some(("box".into(), "s3cret".into())));
        assert!(!format!("{s:?}").contains("s3cret"), "Debug never shows it");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_and_empty_certificate_files_are_named() {
        let d = dir("pem");
        let empty = d.join("ca.pem");
        write(&empty, "not a certificate\n", 0o644);
        let mut mqtt = Mqtt {
            tls: Some(TlsSettings {
                ca_file: Some(empty.clone()),
                ..TlsSettings::default()
            }),
            ..Mqtt::default()
        };
        let msg = load(&mqtt, |p| p.to_path_buf())
            .expect_err("empty")
            .to_string();
        assert!(
            msg.starts_with("mqtt.tls.ca_file: ") && msg.contains("no certificate"),
            "{msg}"
        );
        if let Some(t) = &mut mqtt.tls {
            t.ca_file = Some(d.join("absent.pem"));
        }
        let msg = load(&mqtt, |p| p.to_path_buf())
            .expect_err("absent")
            .to_string();
        assert!(
            msg.contains("cannot read") && msg.contains("absent.pem"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
