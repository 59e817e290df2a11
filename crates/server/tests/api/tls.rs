//! HTTPS from certificate and key files (made here with the system's `openssl`): a client
//! that trusts the certificate is served; plain HTTP to the port is not; TLS lifts the
//! refusal of addresses beyond loopback.

use prismq_domain::ports::Scope;
use prismq_server::tls::TlsFiles;

use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let prismq_testkit::tls::TestCerts { ca, cert, key } =
        prismq_testkit::tls::loopback_certificate(dir.path());
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    let s = Server::start_with(|o| o.tls = Some(files.clone())).await;
    let k = s.key(&[Scope::Read], 100).await;
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let r = trusting
        .get(format!("https://{}/v1/stats", s.addr))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v1/stats", s.addr))
        .bearer_auth(&k)
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    let untrusting = reqwest::Client::new()
        .get(format!("https://{}/v1/stats", s.addr))
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "an unknown certificate is refused by the client"
    );
    // The server still serves after the failed handshakes.
    let r = trusting
        .get(format!("https://{}/v1/stats", s.addr))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;

    let mut o = prismq_server::ServerOptions::new("0.0.0.0:8787".parse().unwrap());
    o.tls = Some(files);
    assert_eq!(prismq_server::check_bind(&o).unwrap(), None);
    o.tls = Some(TlsFiles {
        cert: dir.path().join("missing.pem"),
        key,
    });
    let Err(e) = prismq_server::tls::acceptor(o.tls.as_ref().unwrap()) else {
        panic!("a missing certificate file is refused");
    };
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
