//! The webhooks' HTTP client against real servers on loopback: https verified against the roots
//! it trusts (TLS 1.2 and 1.3), redirects never followed, a slow or silent endpoint cut off at
//! the timeout, at most a few KiB of an answer read, and the headers and body sent as given.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use chrono::{Duration as TimeDelta, Utc};
use hancha::domain::webhook::WebhookUrl;
use hancha::tls::dev::TestPki;
use hancha::workers::webhooks::client::{HttpPoster, PostOutcome, WebhookPoster, WebhookRequest};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

/// What the endpoint saw of the last request.
type Seen = Arc<Mutex<Option<(HeaderMap, Bytes)>>>;

fn router(seen: Seen) -> axum::Router {
    use axum::routing::post;
    axum::Router::new()
        .route(
            "/ok",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    *seen.lock().unwrap() = Some((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/moved",
            post(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/ok")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/big",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(1 << 20)).into_response() }),
        )
}

async fn plain_server(seen: Seen) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(seen)).await });
    address
}

/// A TLS listener for axum, with a certificate for `localhost` and 127.0.0.1.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// An https server with a certificate from `pki`, speaking only `version`.
async fn tls_server(
    pki: &TestPki,
    version: &'static rustls::SupportedProtocolVersion,
    seen: Seen,
) -> SocketAddr {
    let now = Utc::now();
    let (cert, key) = pki
        .issue_county("430703", now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, router(seen)).await });
    address
}

fn trusting(pki: Option<&TestPki>) -> HttpPoster {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pki) = pki {
        for cert in CertificateDer::pem_slice_iter(pki.ca_pem().as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    HttpPoster::with_roots(roots, Duration::from_millis(500), Duration::from_secs(1)).unwrap()
}

fn request(url: &str) -> WebhookRequest {
    WebhookRequest {
        url: WebhookUrl::parse(url).unwrap(),
        headers: vec![
            ("webhook-id", "evt_430703_7".into()),
            ("webhook-timestamp", "1764650000".into()),
            ("webhook-signature", "v1,abc= v1,def=".into()),
        ],
        body: Bytes::from_static(br#"{"type":"answer.received"}"#),
    }
}

#[tokio::test]
async fn posts_the_body_and_headers_as_given_and_takes_a_2xx() {
    let seen = Seen::default();
    let address = plain_server(Arc::clone(&seen)).await;
    let outcome = trusting(None)
        .post(request(&format!("http://{address}/ok")))
        .await;
    assert_eq!(outcome, PostOutcome::Accepted(204));
    let (headers, body) = seen.lock().unwrap().take().expect("the endpoint saw the request");
    assert_eq!(&body[..], br#"{"type":"answer.received"}"#);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["webhook-id"], "evt_430703_7");
    assert_eq!(headers["webhook-timestamp"], "1764650000");
    assert_eq!(headers["webhook-signature"], "v1,abc= v1,def=");
    assert_eq!(headers["host"], address.to_string());
}

#[tokio::test]
async fn https_is_verified_against_the_roots_trusted_over_tls_1_2_and_1_3() {
    let pki = TestPki::new().unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let seen = Seen::default();
        let address = tls_server(&pki, version, Arc::clone(&seen)).await;
        let url = format!("https://localhost:{}/ok", address.port());
        assert_eq!(
            trusting(Some(&pki)).post(request(&url)).await,
            PostOutcome::Accepted(204),
            "{version:?}"
        );
        assert!(seen.lock().unwrap().is_some());
        // a certificate from a CA not trusted is refused, and nothing is sent
        let strangers = TestPki::new().unwrap();
        let seen_before = seen.lock().unwrap().take();
        assert!(seen_before.is_some());
        match trusting(Some(&strangers)).post(request(&url)).await {
            PostOutcome::Failed { result, error, .. } => {
                assert_eq!(result, "tls", "{error}");
                assert!(error.contains("tls handshake failed"), "{error}");
            }
            other => panic!("accepted with an unknown CA: {other:?}"),
        }
        assert!(seen.lock().unwrap().is_none());
    }
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let seen = Seen::default();
    let address = plain_server(Arc::clone(&seen)).await;
    let outcome = trusting(None)
        .post(request(&format!("http://{address}/moved")))
        .await;
    match outcome {
        PostOutcome::Failed {
            result,
            status,
            error,
        } => {
            assert_eq!((result, status), ("redirect", Some(301)));
            assert!(error.contains("redirects are not followed"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        seen.lock().unwrap().is_none(),
        "the target of the redirect got nothing"
    );
}

#[tokio::test]
async fn a_slow_or_silent_endpoint_is_cut_off_at_the_timeout() {
    let address = plain_server(Seen::default()).await;
    let started = Instant::now();
    let outcome = trusting(None)
        .post(request(&format!("http://{address}/slow")))
        .await;
    assert!(
        matches!(
            outcome,
            PostOutcome::Failed {
                result: "timeout",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // accepts the connection and never says anything
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let outcome = trusting(None)
        .post(request(&format!("http://{address}/ok")))
        .await;
    assert!(
        matches!(
            outcome,
            PostOutcome::Failed {
                result: "timeout",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // nothing listening: refused at once
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = trusting(None).post(request(&format!("http://{closed}/ok"))).await;
    assert!(
        matches!(
            outcome,
            PostOutcome::Failed {
                result: "connect",
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_large_error_answer_is_read_in_part_and_kept_short() {
    let address = plain_server(Seen::default()).await;
    let started = Instant::now();
    match trusting(None)
        .post(request(&format!("http://{address}/big")))
        .await
    {
        PostOutcome::Failed {
            result,
            status,
            error,
        } => {
            assert_eq!((result, status), ("http_status", Some(500)));
            assert!(error.starts_with("answered 500"), "{error}");
            assert!(error.chars().count() < 300, "{} characters kept", error.len());
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}
