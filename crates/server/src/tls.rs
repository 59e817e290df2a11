//! TLS from a certificate chain and a private key in PEM files (rustls, with the ring
//! provider the workspace already uses). Handshakes run concurrently, each bounded in time,
//! so a client that stalls in its handshake holds nobody else up; axum's server then sees
//! only finished TLS streams, and its graceful shutdown works as on plain TCP.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The certificate and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("cannot use {what} {path}: {detail}; accepted: a PEM file ({accepted})")]
    File {
        /// certificate or key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
        /// What it should hold.
        accepted: &'static str,
    },
    /// rustls refused the pair (a key that does not match the certificate, …).
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

fn file_err(
    what: &'static str,
    path: &Path,
    detail: impl ToString,
    accepted: &'static str,
) -> TlsError {
    TlsError::File {
        what,
        path: path.to_path_buf(),
        detail: detail.to_string(),
        accepted,
    }
}

/// The acceptor for `files`.
///
/// # Errors
/// [`TlsError`].
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    const CERTS: &str = "one or more CERTIFICATE blocks, leaf first";
    const KEY: &str = "a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block";
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err("certificate", &files.cert, e, CERTS))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err("certificate", &files.cert, e, CERTS))?;
    if certs.is_empty() {
        return Err(file_err(
            "certificate",
            &files.cert,
            "no certificate in it",
            CERTS,
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_err("key", &files.key, e, KEY))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener handing axum finished TLS streams.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` until `shutdown`, shaking hands with each connection in a task of
    /// its own.
    ///
    /// # Errors
    /// The listener has no local address.
    pub fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shutdown.cancelled() => break,
                    a = tcp.accept() => a,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop ended (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
