//! `wxcube simulate`: the built-in WeChat API simulator, for tests and demos.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::exit::{EXIT_FAILURES, EXIT_OK, EXIT_USAGE};
use crate::{shutdown, sim};

/// Runs the command; returns its exit code.
pub async fn run(listen: SocketAddr, faults: &str, secret: Option<String>) -> u8 {
    let faults = match sim::FaultSpec::parse(faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wxcube: simulate: bad --faults: {e}");
            return EXIT_USAGE;
        }
    };
    if secret.as_deref() == Some("") {
        eprintln!("wxcube: simulate: --secret must not be empty");
        return EXIT_USAGE;
    }
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "the simulator listens beyond loopback: it is for tests and demos only");
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wxcube: simulate: cannot listen on {listen}: {e}");
            return EXIT_USAGE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    println!("wxcube simulator listening on http://{addr}");
    let options = sim::SimOptions {
        secret,
        faults,
        ..sim::SimOptions::default()
    };
    let cancel = CancellationToken::new();
    shutdown::install(cancel.clone());
    let shutdown = async move { cancel.cancelled().await };
    match sim::run(listener, options, shutdown).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("wxcube: simulate: error: {e}");
            EXIT_FAILURES
        }
    }
}
