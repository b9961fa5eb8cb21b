//! Serving routers: loopback servers that stop together, over HTTPS when configured, and the
//! signal every binary stops on.

use std::time::Duration;

use axum::Router;

/// Servers on loopback that stop together, over HTTPS when given a TLS config.
#[derive(Debug)]
pub struct Servers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tls: Option<crate::tls::ServerTls>,
}

impl Default for Servers {
    fn default() -> Self {
        Servers::new(None)
    }
}

impl Servers {
    pub fn new(tls: Option<crate::tls::ServerTls>) -> Self {
        Servers {
            stop: tokio::sync::watch::channel(false).0,
            tasks: Vec::new(),
            tls,
        }
    }

    /// Binds 127.0.0.1:`port` (0 = a free port) and returns the listener with its base URL
    /// (`https://` when these servers speak TLS).
    pub async fn bind(&self, port: u16) -> std::io::Result<(tokio::net::TcpListener, String)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr()?);
        Ok((listener, url))
    }

    /// Serves `app` on `listener` until `stop`.
    pub fn serve(&mut self, listener: tokio::net::TcpListener, app: Router) {
        let mut stopped = self.stop.subscribe();
        let tls = self.tls.clone();
        self.tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            match tls {
                Some(tls) => crate::tls::serve(listener, tls, app, shutdown).await,
                None => {
                    if let Err(e) = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!("server stopped: {e}");
                    }
                }
            }
        }));
    }

    /// Stops every server after its open requests finish, waiting at most five seconds each
    /// (an event-stream follower never finishes by itself).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for mut t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

/// Waits for Ctrl-C or SIGTERM: how every binary's servers learn to stop.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
