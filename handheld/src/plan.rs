//! The sync loop without its I/O: which requests carry a round's messages, what each answer does to
//! the local documents, when to stop, and which documents' pending edits the server now holds. The
//! caller brings the two effects — sending a request, storing what a request changed — so the same
//! loop runs over HTTP in [`crate::sync`] and against an in-memory server in the tests below.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use fieldcheck_sync::{
    SyncSession,
    batch::{Bytes, DocMessage, DocResult, SyncRequest, SyncResponse, VERSION},
};

use crate::{DOCS_PER_REQUEST, Doc, MAX_ROUNDS};

/// The local documents a sync holds open, with their sessions, by document id.
pub type Live = BTreeMap<String, (Doc, SyncSession)>;

/// A document's state to store after a request: what `Store::save_round` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub doc: String,
    pub data: Vec<u8>,
    pub sync_state: Vec<u8>,
}

/// A document the server (or its reply) refused: the rule's code and the server's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub doc: String,
    pub code: String,
    pub message: String,
}

/// What one response did to the local documents.
#[derive(Debug, Default)]
pub struct Answered {
    /// Our replies, for the next round.
    pub replies: Vec<DocMessage>,
    /// Documents whose state changed, to store before the next request goes out.
    pub touched: Vec<String>,
    /// Documents that took in new changes from the server (a subset of `touched`).
    pub changed: Vec<String>,
    pub refused: Vec<Refused>,
    /// Changes of ours the server accepted and stored.
    pub accepted: usize,
}

/// How a settled exchange went.
#[derive(Debug, Default)]
pub struct Settled {
    pub rounds: usize,
    pub accepted: usize,
    /// In the order they were refused.
    pub refused: Vec<Refused>,
}

impl Settled {
    pub fn failed(&self) -> BTreeSet<String> {
        self.refused.iter().map(|r| r.doc.clone()).collect()
    }
}

/// The opening message of every document in `ids` (in that order) that has something to say: with
/// our changes since the shared heads in it, so that the server's answer can settle the document.
pub fn opening(live: &mut Live, ids: &[String]) -> Vec<DocMessage> {
    ids.iter()
        .filter_map(|id| {
            let (doc, session) = live.get_mut(id)?;
            Some(DocMessage { doc: id.clone(), data: Bytes(doc.generate_eager(session)?) })
        })
        .collect()
}

/// A round's messages as requests of at most [`DOCS_PER_REQUEST`] documents, in order.
pub fn requests(messages: Vec<DocMessage>) -> Vec<SyncRequest> {
    let mut requests = Vec::with_capacity(messages.len().div_ceil(DOCS_PER_REQUEST));
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        requests.push(SyncRequest {
            v: VERSION,
            messages: messages.by_ref().take(DOCS_PER_REQUEST).collect(),
            pending: None,
        });
    }
    requests
}

/// Takes the server's answers into the local documents. A refused document, or one whose reply we
/// cannot read, is reported and left as it was; answers for documents we did not send are ignored.
pub fn absorb(live: &mut Live, results: Vec<DocResult>) -> Answered {
    let mut answered = Answered::default();
    for result in results {
        if let Some(error) = result.error {
            answered.refused.push(Refused { doc: result.doc, code: error.code, message: error.message });
            continue;
        }
        answered.accepted += result.accepted;
        let Some(data) = result.data else { continue };
        let Some((doc, session)) = live.get_mut(&result.doc) else { continue };
        match doc.receive(session, &data.0) {
            Ok(received) => {
                // A reply that would only tell the server what its answer already showed it (both
                // at the same heads) is not sent: the exchange is settled.
                if let Some(reply) = received.reply.filter(|_| !doc.settled(session)) {
                    answered.replies.push(DocMessage { doc: result.doc.clone(), data: Bytes(reply) });
                }
                if received.accepted.changes > 0 {
                    answered.changed.push(result.doc.clone());
                }
                answered.touched.push(result.doc);
            }
            Err(refusal) => answered.refused.push(Refused {
                doc: result.doc,
                code: "unreadable_reply".into(),
                message: refusal.to_string(),
            }),
        }
    }
    answered
}

/// The documents and sync states to store for `touched`.
pub fn saves(live: &mut Live, touched: &[String]) -> Vec<Saved> {
    touched
        .iter()
        .filter_map(|id| {
            let (doc, session) = live.get_mut(id)?;
            Some(Saved { doc: id.clone(), data: doc.save(), sync_state: session.persist() })
        })
        .collect()
}

/// Exchanges messages for `ids` until neither side has anything to say, at most [`MAX_ROUNDS`]
/// rounds. `send` carries one request; `keep` stores what a response changed, and runs before the
/// next request goes out so that a crash resumes from the last answered request.
pub fn settle(
    live: &mut Live,
    ids: &[String],
    mut send: impl FnMut(&SyncRequest) -> Result<SyncResponse>,
    mut keep: impl FnMut(&SyncResponse, &[Saved]) -> Result<()>,
) -> Result<Settled> {
    let mut settled = Settled::default();
    let mut outgoing = opening(live, ids);
    while !outgoing.is_empty() {
        settled.rounds += 1;
        if settled.rounds > MAX_ROUNDS {
            bail!("the sync did not settle after {MAX_ROUNDS} rounds; run it again");
        }
        let mut next = Vec::new();
        for request in requests(outgoing) {
            let mut response = send(&request)?;
            let answered = absorb(live, std::mem::take(&mut response.results));
            keep(&response, &saves(live, &answered.touched))?;
            settled.accepted += answered.accepted;
            settled.refused.extend(answered.refused);
            next.extend(answered.replies);
        }
        outgoing = next;
    }
    Ok(settled)
}

/// The documents whose pending edits the server now holds: every one synced that nothing refused.
pub fn acknowledged<'a>(ids: &'a [String], failed: &BTreeSet<String>) -> Vec<&'a String> {
    ids.iter().filter(|id| !failed.contains(*id)).collect()
}

#[cfg(test)]
mod tests {
    use fieldcheck_sync::{
        Assignment, AssignmentIndex, Rules,
        batch::{DocError, DocResult},
        new_actor_id,
    };

    use super::*;

    const T0: i64 = 1_750_000_000_000;

    /// The server's side, in memory: one assignment index per document id, as the server holds them.
    struct Server {
        docs: BTreeMap<String, (AssignmentIndex, SyncSession)>,
        /// Documents the server refuses whatever is sent.
        refuse: BTreeSet<String>,
        /// Documents whose answer is bytes no automerge peer can read.
        garble: BTreeSet<String>,
        requests: Vec<usize>,
    }

    impl Server {
        /// `n` documents, each listing one instruction named after it.
        fn with(n: usize) -> Server {
            let actor = new_actor_id();
            let docs = (0..n)
                .map(|i| {
                    let mut index = AssignmentIndex::create(actor.clone(), T0).unwrap();
                    index.assign(&format!("ins-{i}"), &assignment(i), T0).unwrap();
                    (doc_id(i), (index, SyncSession::new()))
                })
                .collect();
            Server { docs, refuse: BTreeSet::new(), garble: BTreeSet::new(), requests: Vec::new() }
        }

        fn answer(&mut self, request: &SyncRequest) -> Result<SyncResponse> {
            self.requests.push(request.messages.len());
            let results = request
                .messages
                .iter()
                .map(|m| {
                    let mut result = DocResult { doc: m.doc.clone(), data: None, error: None, accepted: 0 };
                    if self.refuse.contains(&m.doc) {
                        result.error =
                            Some(DocError { code: "not_assigned".into(), message: "not yours".into() });
                    } else if self.garble.contains(&m.doc) {
                        result.data = Some(Bytes(b"not a sync message".to_vec()));
                    } else {
                        let (doc, session) = self.docs.get_mut(&m.doc).expect("a known document");
                        let received = session.receive(doc, &m.data.0, &Rules::ReadOnly).unwrap();
                        result.accepted = received.accepted.changes;
                        result.data = received.reply.map(Bytes);
                    }
                    result
                })
                .collect();
            Ok(SyncResponse { v: VERSION, index_doc: "index-of-officer1".into(), results })
        }
    }

    fn doc_id(i: usize) -> String {
        format!("doc-{i:04}")
    }

    fn assignment(i: usize) -> Assignment {
        Assignment {
            record_doc_id: format!("record-{i}"),
            inspection_no: "212345678901234".into(),
            site: "Beilun yard 3".into(),
            deadline: T0 + 86_400_000,
            assigned_at: T0,
        }
    }

    /// A handheld that has never synced these documents: empty replicas.
    fn empty_handheld(ids: &[String]) -> Live {
        let actor = new_actor_id();
        ids.iter()
            .map(|id| (id.clone(), (Doc::Index(AssignmentIndex::replica(actor.clone())), SyncSession::new())))
            .collect()
    }

    fn listed(live: &Live, id: &str) -> Option<BTreeMap<String, Assignment>> {
        match &live[id].0 {
            Doc::Index(index) => index.read().ok(),
            Doc::Record(_) => None,
        }
    }

    #[test]
    fn a_round_of_six_hundred_messages_goes_out_as_three_requests_in_order() {
        let messages: Vec<_> =
            (0..600).map(|i| DocMessage { doc: doc_id(i), data: Bytes(vec![i as u8]) }).collect();
        let requests = requests(messages);
        let sizes: Vec<_> = requests.iter().map(|r| r.messages.len()).collect();
        assert_eq!(sizes, [250, 250, 100]);
        let order: Vec<_> = requests.iter().flat_map(|r| &r.messages).map(|m| m.doc.clone()).collect();
        assert_eq!(order, (0..600).map(doc_id).collect::<Vec<_>>());
        assert!(requests.iter().all(|r| r.v == VERSION));
    }

    #[test]
    fn an_empty_round_sends_no_request() {
        assert!(requests(Vec::new()).is_empty());
    }

    #[test]
    fn a_first_sync_of_six_hundred_documents_settles_in_three_rounds_and_brings_every_one() {
        let ids: Vec<_> = (0..600).map(doc_id).collect();
        let mut server = Server::with(600);
        let mut live = empty_handheld(&ids);
        let mut stored = BTreeMap::new();
        let settled = settle(
            &mut live,
            &ids,
            |request| server.answer(request),
            |_, saves| {
                stored.extend(saves.iter().map(|s| (s.doc.clone(), s.data.clone())));
                Ok(())
            },
        )
        .unwrap();
        assert!(settled.rounds <= 3, "{} rounds", settled.rounds);
        assert!(settled.refused.is_empty(), "{:?}", settled.refused);
        assert!(server.requests.iter().all(|&n| n <= DOCS_PER_REQUEST), "{:?}", server.requests);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(listed(&live, id).unwrap()[&format!("ins-{i}")], assignment(i));
            let kept = AssignmentIndex::load(&stored[id], new_actor_id()).unwrap();
            assert_eq!(kept.read().unwrap()[&format!("ins-{i}")], assignment(i), "what was stored for {id}");
        }
        assert_eq!(acknowledged(&ids, &settled.failed()).len(), 600);
    }

    #[test]
    fn a_document_the_server_refuses_is_reported_and_not_acknowledged_while_the_rest_sync() {
        let ids: Vec<_> = (0..3).map(doc_id).collect();
        let mut server = Server::with(3);
        server.refuse.insert(doc_id(1));
        let mut live = empty_handheld(&ids);
        let settled = settle(&mut live, &ids, |r| server.answer(r), |_, _| Ok(())).unwrap();
        assert_eq!(
            settled.refused,
            [Refused { doc: doc_id(1), code: "not_assigned".into(), message: "not yours".into() }]
        );
        assert_eq!(acknowledged(&ids, &settled.failed()), [&doc_id(0), &doc_id(2)]);
        assert!(listed(&live, &doc_id(0)).is_some() && listed(&live, &doc_id(2)).is_some());
        assert_eq!(listed(&live, &doc_id(1)), None, "the refused document stays as it was");
    }

    #[test]
    fn an_unreadable_reply_refuses_that_document_only_and_stores_nothing_of_it() {
        let ids: Vec<_> = (0..2).map(doc_id).collect();
        let mut server = Server::with(2);
        server.garble.insert(doc_id(0));
        let mut live = empty_handheld(&ids);
        let mut stored = Vec::new();
        let settled = settle(
            &mut live,
            &ids,
            |r| server.answer(r),
            |_, saves| {
                stored.extend(saves.iter().map(|s| s.doc.clone()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(settled.refused.len(), 1);
        assert_eq!(
            (settled.refused[0].doc.as_str(), settled.refused[0].code.as_str()),
            ("doc-0000", "unreadable_reply")
        );
        assert!(!stored.contains(&doc_id(0)) && stored.contains(&doc_id(1)), "{stored:?}");
    }

    #[test]
    fn answers_for_documents_not_sent_are_ignored() {
        let mut live = empty_handheld(&[doc_id(0)]);
        let stray = DocResult {
            doc: "someone-else".into(),
            data: Some(Bytes(vec![1, 2, 3])),
            error: None,
            accepted: 0,
        };
        let answered = absorb(&mut live, vec![stray]);
        assert!(answered.replies.is_empty() && answered.touched.is_empty() && answered.refused.is_empty());
    }

    #[test]
    fn a_sync_that_never_settles_stops_after_the_round_limit() {
        // A peer that always has something to say: every answer is a fresh opening message.
        let mut live = empty_handheld(&[doc_id(0)]);
        let mut rounds = 0;
        let error = settle(
            &mut live,
            &[doc_id(0)],
            |request| {
                rounds += 1;
                let mut chatty = AssignmentIndex::create(new_actor_id(), T0).unwrap();
                let data = SyncSession::new().generate(&mut chatty).map(Bytes);
                let doc = request.messages[0].doc.clone();
                Ok(SyncResponse {
                    v: VERSION,
                    index_doc: "index".into(),
                    results: vec![DocResult { doc, data, error: None, accepted: 0 }],
                })
            },
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("did not settle"), "{error}");
        assert_eq!(rounds, MAX_ROUNDS);
    }

    #[test]
    fn a_second_sync_with_nothing_new_takes_one_round_and_brings_no_change() {
        let ids: Vec<_> = (0..5).map(doc_id).collect();
        let mut server = Server::with(5);
        let mut live = empty_handheld(&ids);
        settle(&mut live, &ids, |r| server.answer(r), |_, _| Ok(())).unwrap();
        // As a new process would: documents and sessions from what was stored.
        let actor = new_actor_id();
        let mut again: Live = saves(&mut live, &ids)
            .into_iter()
            .map(|s| {
                let doc = Doc::Index(AssignmentIndex::load(&s.data, actor.clone()).unwrap());
                (s.doc, (doc, SyncSession::resume(&s.sync_state).unwrap()))
            })
            .collect();
        let settled = settle(&mut again, &ids, |r| server.answer(r), |_, _| Ok(())).unwrap();
        assert!(settled.rounds <= 1, "{} rounds", settled.rounds);
        assert_eq!(settled.accepted, 0);
    }
}
