//! [`Gate`]: a TCP forwarder a test can shut, to make a server (PostgreSQL, say) unreachable
//! for one client without touching the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// A TCP forwarder in front of `target` that can be shut: then its open connections are cut
/// and new ones closed at once, as an unreachable server looks to a client.
pub struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// Opens a gate to `target` on a free local port.
    pub async fn to(target: SocketAddr) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gate");
        let addr = listener.local_addr().expect("gate address");
        let open = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let accept = tokio::spawn({
            let (open, cut) = (open.clone(), cut.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let cut = cut.lock().expect("gate lock").clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = cut.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        }
                    });
                }
            }
        });
        Gate {
            addr,
            open,
            cut,
            accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and refuses new ones until [`Gate::open`].
    pub fn shut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().expect("gate lock");
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Lets connections through again.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.lock().expect("gate lock").cancel();
    }
}
