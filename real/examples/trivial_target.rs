//! A trivial HTTP target for measuring a load generator's own ceiling
//! (`scripts/load-ceiling`): answers every request at once with `202 {}`, HTTP/1.1 keep-alive,
//! on the address given (default `127.0.0.1:0`), announced as `listening ADDR`.
//!
//! `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release -p real --example trivial_target`

#[cfg(madsim)]
fn main() {
    eprintln!(
        "error: the trivial target needs the real build (RUSTFLAGS= CARGO_TARGET_DIR=target/real)"
    );
    std::process::exit(2);
}

#[cfg(not(madsim))]
fn main() -> std::io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use std::io::Write;

    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening {}", l.local_addr()?);
        std::io::stdout().flush()?;
        loop {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .status(202)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(b"{}")))
                            .unwrap_or_default(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    })
}
