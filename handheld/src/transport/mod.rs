//! How a sync's messages travel: the batch endpoint (`POST /api/v1/sync`, through [`crate::client`]) or
//! automerge-repo's WebSocket protocol ([`ws`]). Both carry the same opaque automerge sync messages
//! that [`crate::plan`] produces and absorbs, so switching between them changes nothing stored here:
//! the documents and the sync states (the heads shared with the server) mean the same whichever way
//! they last travelled.
//!
//! # Layout
//! - this file: [`Kind`] (the `--transport` choice) and [`Transport`], one round's request in, the
//!   server's answers out.
//! - [`ws`]: the WebSocket transport.

pub mod ws;

use anyhow::Result;
use fieldcheck_sync::batch::{SyncRequest, SyncResponse};

use crate::client::Client;

/// Which way a sync travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `POST /api/v1/sync`: one HTTP request per round of up to 250 documents.
    #[default]
    Batch,
    /// `GET /api/v1/sync/ws`: automerge-repo's protocol over one WebSocket.
    Ws,
}

/// An open transport for one sync.
pub enum Transport {
    Batch,
    Ws(Box<ws::WsTransport>),
}

impl Transport {
    /// A transport of `kind` for the server `client` talks to; a WebSocket connects on first use.
    pub fn open(kind: Kind, client: &Client, device_id: &str, private_ca: Option<&str>) -> Result<Transport> {
        Ok(match kind {
            Kind::Batch => Transport::Batch,
            Kind::Ws => Transport::Ws(Box::new(ws::WsTransport::new(&client.base, device_id, private_ca)?)),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Transport::Batch => Kind::Batch,
            Transport::Ws(_) => Kind::Ws,
        }
    }

    /// One round's messages to the server and its answers, as the batch endpoint gives them. `index_doc`
    /// is this officer's index document (the batch endpoint names it in every response).
    pub fn send(
        &mut self,
        client: &mut Client,
        request: &SyncRequest,
        index_doc: &str,
    ) -> Result<SyncResponse> {
        match self {
            Transport::Batch => client.sync(request),
            Transport::Ws(ws) => ws.send(client, request, index_doc),
        }
    }
}
