//! Throwaway TLS files for tests, made with the system's `openssl` (installed by
//! `scripts/services/postgres.sh`): a CA and a server certificate for 127.0.0.1 it signed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files [`loopback_certificate`] writes.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA's certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server's certificate, for `IP:127.0.0.1`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Writes a new CA and a certificate for 127.0.0.1 signed by it (P-256, valid one day)
/// into `dir`.
///
/// # Panics
/// When `openssl` is missing or refuses (a test setup failure, with its message).
pub fn loopback_certificate(dir: &Path) -> TestCerts {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect(
                "openssl (installed by scripts/services/postgres.sh) makes the test certificates",
            );
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_args = [
        "-days",
        "1",
        "-subj",
        "/CN=prismq test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    openssl(&[&["req", "-x509"][..], &ec[..], &ca_args[..]].concat());
    let leaf_args = [
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ];
    openssl(&[&["req"][..], &ec[..], &leaf_args[..]].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the certificate extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    TestCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}
