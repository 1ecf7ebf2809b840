//! Raft RPCs between simulated hosts: `natsd-raft` frames over turmoil TCP, one connection
//! per RPC, length-prefixed.

use std::sync::Arc;

use natsd_raft::{BoxFuture, NodeId, RaftHub, RaftTransport, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::jscluster::host;

/// The port every host serves Raft on.
pub const RAFT_PORT: u16 = 7000;
const MAX_FRAME: u32 = 64 << 20;

/// Raft RPCs over turmoil TCP: one connection per RPC, length-prefixed frames.
pub struct TurmoilRaft;

fn net_err(e: std::io::Error) -> TransportError {
    TransportError::Network(e.to_string())
}

impl RaftTransport for TurmoilRaft {
    fn send(
        &self,
        target: NodeId,
        frame: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        Box::pin(async move {
            let mut s = turmoil::net::TcpStream::connect(format!("{}:{RAFT_PORT}", host(target)))
                .await
                .map_err(|e| TransportError::Unreachable(e.to_string()))?;
            let len = u32::try_from(frame.len())
                .map_err(|_| TransportError::Network("frame too large".into()))?;
            s.write_u32(len).await.map_err(net_err)?;
            s.write_all(&frame).await.map_err(net_err)?;
            let n = s.read_u32().await.map_err(net_err)?;
            if n > MAX_FRAME {
                return Err(TransportError::Network(format!("reply of {n} bytes")));
            }
            let mut reply = vec![0; n as usize];
            s.read_exact(&mut reply).await.map_err(net_err)?;
            Ok(reply)
        })
    }
}

/// Serves one connection's frames to `hub` until it closes.
pub async fn serve(hub: Arc<RaftHub>, mut s: turmoil::net::TcpStream) -> std::io::Result<()> {
    loop {
        let n = s.read_u32().await?;
        if n > MAX_FRAME {
            return Ok(());
        }
        let mut frame = vec![0; n as usize];
        s.read_exact(&mut frame).await?;
        let reply = hub.handle_frame(&frame).await;
        s.write_u32(reply.len() as u32).await?;
        s.write_all(&reply).await?;
    }
}
