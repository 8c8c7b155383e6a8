//! A small HTTP/1.1 server on loopback that owns its accept loop and its connections, so it
//! can go "down" for real: stop listening (new connections are refused) and close every open
//! keep-alive connection, then listen again on the same port (SO_REUSEADDR).
//!
//! The sink and the proxy both run on it; it stops when its [`Server`] handle is dropped.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// Returned by a handler to close the connection without answering.
#[derive(Debug)]
pub(crate) struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed on purpose")
    }
}

impl std::error::Error for CloseConnection {}

pub(crate) type HandlerFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, CloseConnection>> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

enum Control {
    Down(oneshot::Sender<()>),
    Up(oneshot::Sender<io::Result<()>>),
}

/// The handle; dropping it stops the server and closes its connections.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Down(_) => "Down",
            Control::Up(_) => "Up",
        })
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Server {
    /// Listens on 127.0.0.1 (a free port) and serves `handler` on the current runtime.
    pub(crate) fn start(handler: Handler) -> io::Result<Server> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let (control, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Some(listener), addr, handler, rx));
        Ok(Server { addr, control })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Down: stop listening and close all connections. Up: listen again on the same port.
    /// Returns once done.
    pub(crate) async fn set_down(&self, down: bool) -> io::Result<()> {
        let gone = || io::Error::other("server task is gone");
        if down {
            let (tx, rx) = oneshot::channel();
            self.control.send(Control::Down(tx)).map_err(|_| gone())?;
            rx.await.map_err(|_| gone())
        } else {
            let (tx, rx) = oneshot::channel();
            self.control.send(Control::Up(tx)).map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        }
    }
}

async fn run(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    handler: Handler,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            cmd = control.recv() => match cmd {
                None => {
                    drop(listener);
                    connections.shutdown().await;
                    return;
                }
                Some(Control::Down(ack)) => {
                    listener = None;
                    connections.shutdown().await;
                    let _ = ack.send(());
                }
                Some(Control::Up(ack)) => {
                    let result = match listener {
                        Some(_) => Ok(()),
                        None => bind(addr).map(|l| listener = Some(l)),
                    };
                    let _ = ack.send(result);
                }
            },
            accepted = accept(listener.as_ref()), if listener.is_some() => match accepted {
                Ok(stream) => {
                    connections.spawn(serve_connection(stream, handler.clone()));
                }
                Err(_) => {
                    // E.g. too many open files: back off a little instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

async fn serve_connection(stream: TcpStream, handler: Handler) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handler(req));
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A plain response.
pub(crate) fn response(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
