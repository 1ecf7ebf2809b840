//! Raft RPCs over a [`RaftTransport`]: openraft's `RaftNetworkFactory`/`RaftNetwork` for one
//! group, and the frames every group's RPCs travel in.
//!
//! A frame names its group, so one transport per server carries the RPCs of every group (the
//! meta group and one per replicated stream or consumer); the receiving [`RaftHub`](crate::RaftHub)
//! routes it. Frames are bincode (compact, schema-free, versioned by this crate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, SnapshotMismatch,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Why a transport could not deliver an RPC or bring back its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection to the node (down, partitioned, not yet connected): openraft backs off.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The connection failed while the RPC was in flight, or the reply was lost.
    #[error("network error: {0}")]
    Network(String),
}

/// A boxed, sendable future, so [`RaftTransport`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries one encoded RPC frame to a node and brings back the encoded reply.
///
/// In production the frames travel over the cluster's route connections and the peer hands
/// them to its [`RaftHub::handle_frame`](crate::RaftHub::handle_frame); tests use
/// [`LocalNet`](crate::LocalNet). The caller puts the deadline on the returned future.
pub trait RaftTransport: Send + Sync + 'static {
    /// Sends `frame` to node `target` and resolves with its reply frame.
    fn send(
        &self,
        target: NodeId,
        frame: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

/// An RPC of one group, as sent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RequestFrame {
    pub(crate) group: String,
    pub(crate) rpc: Request,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to a [`RequestFrame`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ReplyFrame {
    Append(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    Snapshot(InstallSnapshotResponse<NodeId>),
    /// The snapshot chunk did not continue the one being received: restart it.
    SnapshotMismatch(SnapshotMismatch),
    /// The peer did not handle it: no such group, a damaged replica asked to vote, the group is
    /// shutting down, or the frame did not decode.
    Refused(String),
}

/// Encodes a reply frame (the hub's side).
pub(crate) fn encode_reply(reply: &ReplyFrame) -> Vec<u8> {
    encode(reply)
        .or_else(|e| encode(&ReplyFrame::Refused(format!("reply does not encode: {e}"))))
        .unwrap_or_default()
}

/// Decodes a request frame (the hub's side).
pub(crate) fn decode_request(frame: &[u8]) -> Result<RequestFrame, String> {
    decode(frame)
}

/// openraft's network factory for one group on one server.
#[derive(Clone)]
pub struct GroupNetwork {
    group: Arc<str>,
    transport: Arc<dyn RaftTransport>,
}

impl GroupNetwork {
    /// The network of `group` over `transport`.
    pub fn new(group: &str, transport: Arc<dyn RaftTransport>) -> Self {
        Self {
            group: Arc::from(group),
            transport,
        }
    }
}

/// openraft's client to one peer in one group.
pub struct PeerClient {
    target: NodeId,
    group: Arc<str>,
    transport: Arc<dyn RaftTransport>,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &NodeInfo) -> PeerClient {
        PeerClient {
            target,
            group: Arc::clone(&self.group),
            transport: Arc::clone(&self.transport),
        }
    }
}

/// What went wrong on one call, before it is shaped into openraft's error of that RPC.
enum CallError {
    Unreachable(String),
    Network(String),
    Mismatch(SnapshotMismatch),
}

impl PeerClient {
    async fn call(&self, rpc: Request, ttl: Duration) -> Result<ReplyFrame, CallError> {
        let frame = encode(&RequestFrame {
            group: self.group.to_string(),
            rpc,
        })
        .map_err(|e| CallError::Network(format!("request does not encode: {e}")))?;
        let sent = self.transport.send(self.target, frame);
        let reply = match tokio::time::timeout(ttl, sent).await {
            Err(_) => return Err(CallError::Network(format!("no reply within {ttl:?}"))),
            Ok(Err(TransportError::Unreachable(e))) => return Err(CallError::Unreachable(e)),
            Ok(Err(TransportError::Network(e))) => return Err(CallError::Network(e)),
            Ok(Ok(bytes)) => bytes,
        };
        match decode::<ReplyFrame>(&reply) {
            Ok(ReplyFrame::Refused(why)) => Err(CallError::Network(format!("refused: {why}"))),
            Ok(ReplyFrame::SnapshotMismatch(m)) => Err(CallError::Mismatch(m)),
            Ok(other) => Ok(other),
            Err(e) => Err(CallError::Network(format!("bad reply frame: {e}"))),
        }
    }
}

fn any(msg: String) -> openraft::AnyError {
    openraft::AnyError::error(msg)
}

fn rpc_err<E: std::error::Error>(e: CallError) -> RPCError<NodeId, NodeInfo, E> {
    match e {
        CallError::Unreachable(m) => RPCError::Unreachable(Unreachable::new(&any(m))),
        CallError::Network(m) => RPCError::Network(NetworkError::new(&any(m))),
        CallError::Mismatch(m) => RPCError::Network(NetworkError::new(&m)),
    }
}

fn wrong_reply<E: std::error::Error>() -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Network(NetworkError::new(
        &any("reply of the wrong kind".to_owned()),
    ))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        match self.call(Request::Append(rpc), option.hard_ttl()).await {
            Ok(ReplyFrame::Append(r)) => Ok(r),
            Ok(_) => Err(wrong_reply()),
            Err(e) => Err(rpc_err(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.call(Request::Snapshot(rpc), option.hard_ttl()).await {
            Ok(ReplyFrame::Snapshot(r)) => Ok(r),
            Ok(_) => Err(wrong_reply()),
            // openraft restarts the transfer from the first chunk on this one.
            Err(CallError::Mismatch(m)) => Err(RPCError::RemoteError(RemoteError::new(
                self.target,
                RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m)),
            ))),
            Err(e) => Err(rpc_err(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await {
            Ok(ReplyFrame::Vote(r)) => Ok(r),
            Ok(_) => Err(wrong_reply()),
            Err(e) => Err(rpc_err(e)),
        }
    }
}
