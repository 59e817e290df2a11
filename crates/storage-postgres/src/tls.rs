//! TLS to PostgreSQL: the URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, read as
//! libpq reads them, except that a server certificate is always verified.
//!
//! The driver itself knows only `sslmode=disable|prefer|require` and refuses the other
//! parameters, so they are taken out of the URL here and turned into a rustls configuration.
//! `require` verifies too (libpq's `require` accepts any certificate; PrismQ never does), and
//! `verify-ca` checks the chain but not the host name, as in libpq.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::{Host, SslMode as DriverSslMode};

use crate::StoreError;

/// The connector every connection of a store uses; with `sslmode=disable` it is never called.
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;

/// What `sslmode` asks for, libpq's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it (verified), plain when it does not.
    Prefer,
    /// TLS or no connection; the certificate's chain and host name are verified.
    Require,
    /// TLS; the chain is verified, the host name is not.
    VerifyCa,
    /// TLS; chain and host name verified.
    VerifyFull,
}

/// The values `sslmode` accepts, for error messages.
pub(crate) const SSLMODE_ACCEPTED: &str = "disable, prefer, require, verify-ca or verify-full";

impl SslMode {
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::InvalidUrl(format!(
                    "sslmode={other:?} is not known; use {SSLMODE_ACCEPTED}"
                )))
            }
        })
    }

    /// The driver's mode: it only decides whether TLS is tried and whether it is required.
    fn driver(self) -> DriverSslMode {
        match self {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }
}

/// The TLS half of a `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// `sslmode` as written, `None` when absent.
    pub(crate) mode: Option<SslMode>,
    /// `sslrootcert`: PEM file of the certificates to trust instead of the built-in roots.
    pub(crate) root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`: a client certificate (PEM chain) and its key.
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

/// Takes the TLS parameters out of `url`: the URL the driver parses (the other parameters
/// kept in order), and the settings.
///
/// # Errors
/// `InvalidUrl` for an unknown `sslmode`, an empty or repeated TLS parameter, or only one of
/// `sslcert` and `sslkey`.
pub(crate) fn split_url(url: &str) -> Result<(String, TlsSettings), StoreError> {
    let url = url.trim();
    let mut settings = TlsSettings {
        mode: None,
        root_cert: None,
        client_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), settings));
    };
    let (mut kept, mut cert, mut key) = (Vec::new(), None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" => name,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        let value = percent_decode(raw).map_err(|e| {
            StoreError::InvalidUrl(format!("the value of {slot} is not valid: {e}"))
        })?;
        if value.is_empty() {
            return Err(StoreError::InvalidUrl(format!(
                "{slot} is empty; give it a value or leave it out"
            )));
        }
        let repeated = match slot {
            "sslmode" => settings.mode.replace(SslMode::parse(&value)?).is_some(),
            "sslrootcert" => settings.root_cert.replace(value.into()).is_some(),
            "sslcert" => cert.replace(PathBuf::from(value)).is_some(),
            _ => key.replace(PathBuf::from(value)).is_some(),
        };
        if repeated {
            return Err(StoreError::InvalidUrl(format!(
                "{slot} is given twice; give it once"
            )));
        }
    }
    settings.client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(StoreError::InvalidUrl(
                "sslcert and sslkey go together: give both (a client certificate and its key) or neither".into(),
            ))
        }
    };
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, settings))
}

/// Decodes `%XX` escapes (a path may hold spaces or `&`).
fn percent_decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a % is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "it is not UTF-8 once decoded")
}

impl TlsSettings {
    /// The mode in force: as written, or when absent `disable` if every host is this machine
    /// (a unix socket or a loopback address: TLS to oneself protects nothing, and local
    /// servers often carry a self-signed certificate), `prefer` otherwise.
    pub(crate) fn effective_mode(&self, cfg: &tokio_postgres::Config) -> SslMode {
        self.mode.unwrap_or_else(|| {
            if cfg.get_hosts().iter().all(is_local) {
                SslMode::Disable
            } else {
                SslMode::Prefer
            }
        })
    }

    /// Sets the driver's mode on `cfg` and builds the connector.
    ///
    /// # Errors
    /// `Tls` when a certificate or key file cannot be read or holds nothing usable.
    pub(crate) fn apply(&self, cfg: &mut tokio_postgres::Config) -> Result<Connector, StoreError> {
        let mode = self.effective_mode(cfg);
        cfg.ssl_mode(mode.driver());
        Ok(Connector::new(self.client_config(mode)?))
    }

    fn client_config(&self, mode: SslMode) -> Result<ClientConfig, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                for cert in read_certs(path, "sslrootcert")? {
                    roots.add(cert).map_err(|e| {
                        tls_err(format!(
                            "sslrootcert {} holds a certificate that cannot be trusted: {e}",
                            path.display()
                        ))
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| tls_err(format!("the trusted certificates are not usable: {e}")))?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?;
        let builder = if mode == SslMode::VerifyCa {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        } else {
            builder.with_webpki_verifier(verifier)
        };
        match &self.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = read_certs(cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    tls_err(format!(
                        "sslkey {}: no usable private key ({e}); give a PEM file holding the client certificate's key",
                        key.display()
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_err(format!("sslcert and sslkey do not go together: {e}")))
            }
        }
    }
}

fn tls_err(message: String) -> StoreError {
    StoreError::Tls(message)
}

/// Every certificate in the PEM file at `path` (the URL parameter `what` named it).
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_err(format!(
                "{what} {}: cannot read certificates ({e}); give a PEM file",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{what} {} holds no certificate; give a PEM file with at least one -----BEGIN CERTIFICATE----- block",
            path.display()
        )));
    }
    Ok(certs)
}

/// Whether every host `url` names is this machine (false when it does not parse).
pub(crate) fn all_hosts_local(url: &str) -> bool {
    split_url(url)
        .ok()
        .and_then(|(rest, _)| tokio_postgres::Config::from_str(&rest).ok())
        .is_some_and(|cfg| cfg.get_hosts().iter().all(is_local))
}

/// Whether `host` is this machine: a unix socket, `localhost` or a loopback address.
fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// `verify-ca`: the chain must lead to a trusted root, the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsSettings) {
        split_url(url).unwrap()
    }

    #[test]
    fn the_tls_parameters_leave_the_url_and_the_rest_stay_in_order() {
        let (rest, s) = split(
            "postgres://u@db:5432/q?application_name=a&sslmode=verify-full&sslrootcert=/etc/ca%20x.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgres://u@db:5432/q?application_name=a&connect_timeout=3"
        );
        assert_eq!(s.mode, Some(SslMode::VerifyFull));
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/ca x.pem")));
        assert_eq!(s.client_cert, None);
        let (rest, s) = split("postgres://u@db/q?sslcert=c.pem&sslkey=k.pem");
        assert_eq!(rest, "postgres://u@db/q");
        assert_eq!(
            s.client_cert,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
    }

    #[test]
    fn bad_tls_parameters_say_what_is_accepted() {
        for (url, needle) in [
            ("postgres://u@db/q?sslmode=allow", SSLMODE_ACCEPTED),
            ("postgres://u@db/q?sslmode=", "sslmode is empty"),
            (
                "postgres://u@db/q?sslmode=require&sslmode=disable",
                "given twice",
            ),
            ("postgres://u@db/q?sslcert=c.pem", "go together"),
            ("postgres://u@db/q?sslrootcert=%zz", "two hex digits"),
        ] {
            let e = split_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn without_sslmode_only_this_machine_goes_without_tls() {
        for (url, mode) in [
            ("postgres://u@127.0.0.1/q", SslMode::Disable),
            ("postgres://u@localhost/q", SslMode::Disable),
            ("postgres://u@[::1]/q", SslMode::Disable),
            ("postgres://u@/q?host=/run/postgresql", SslMode::Disable),
            ("postgres://u@db.internal/q", SslMode::Prefer),
            ("postgres://u@localhost,db.internal/q", SslMode::Prefer),
            ("postgres://u@127.0.0.1/q?sslmode=require", SslMode::Require),
        ] {
            let (rest, s) = split(url);
            let cfg = tokio_postgres::Config::from_str(&rest).unwrap();
            assert_eq!(s.effective_mode(&cfg), mode, "{url}");
        }
    }
}
