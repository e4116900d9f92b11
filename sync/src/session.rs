//! `SyncSession`: the sync conversation with one peer about one document, independent of transport.
//! The batch HTTP endpoint and the automerge-repo WebSocket endpoint both carry its messages as
//! opaque bytes, so they share this logic (and its validation) unchanged.

use automerge::sync::{self, DecodeStateError, SyncDoc};

use crate::record::Document;
use crate::schema::InstructionPart;
use crate::validate::{AcceptedChanges, Refusal, Rules, validate_message, validate_owned};

/// The sync state for one (peer, document) pair.
///
/// Automerge's protocol assumes an ordered, reliable exchange. When a connection drops (or an HTTP
/// response may have been lost), continue from [`persist`](Self::persist)ed state rather than the
/// in-memory one: the persisted part is only what both sides are known to share, so the next round
/// re-sends whatever may have gone missing.
#[derive(Debug, Clone, Default)]
pub struct SyncSession {
    state: sync::State,
}

/// A message that was accepted.
#[derive(Debug)]
pub struct Received {
    /// What it added to the document. If `changes > 0`, persist the document before sending
    /// `reply`: the reply acknowledges the changes.
    pub accepted: AcceptedChanges,
    /// The answer to send back, if the protocol needs one.
    pub reply: Option<Vec<u8>>,
}

/// A persisted session state that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored sync state is unreadable: {0}")]
pub struct CorruptState(#[from] DecodeStateError);

impl SyncSession {
    /// A session with a peer we have never synced this document with.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues a session from [`persist`](Self::persist)ed bytes.
    pub fn resume(persisted: &[u8]) -> Result<Self, CorruptState> {
        Ok(Self { state: sync::State::decode(persisted)? })
    }

    /// The part of the state worth keeping between connections (the heads both sides share).
    pub fn persist(&self) -> Vec<u8> {
        self.state.encode()
    }

    /// Takes a message from the peer: validates it against `rules`, applies it to `doc` only if
    /// every change passes, and returns the reply. On refusal `doc` and the session are unchanged.
    ///
    /// If persisting `doc` then fails, drop this session and reload the document before syncing
    /// again: the session already counts the reply as sent.
    pub fn receive<D: Document>(
        &mut self,
        doc: &mut D,
        message: &[u8],
        rules: &Rules,
    ) -> Result<Received, Refusal> {
        let accepted = validate_message(doc, &self.state, message, rules)?;
        *doc = accepted.doc;
        self.state = accepted.state;
        Ok(Received { accepted: accepted.changes, reply: accepted.reply })
    }

    /// [`receive`](Self::receive) on a document given up rather than borrowed: no copy of it is made.
    /// Accepted, the merged document comes back; refused, it is gone (it may hold the refused changes)
    /// and the session is unchanged. `instruction`: see [`validate_owned`].
    pub fn receive_owned<D: Document>(
        &mut self,
        doc: D,
        message: &[u8],
        rules: &Rules,
        instruction: Option<&InstructionPart>,
    ) -> Result<(D, Received), Refusal> {
        let accepted = validate_owned(doc, &self.state, message, rules, instruction)?;
        self.state = accepted.state;
        Ok((accepted.doc, Received { accepted: accepted.changes, reply: accepted.reply }))
    }

    /// Whether the peer's last message showed it at exactly `doc`'s heads: nothing is left to tell
    /// each other, so a reply that would only acknowledge can be left unsent.
    pub fn settled<D: Document>(&self, doc: &mut D) -> bool {
        self.state.their_heads.as_deref() == Some(doc.automerge_mut().get_heads().as_slice())
    }

    /// The opening message of a session resumed from persisted state, carrying every local change
    /// since the heads both sides were known to share (issue 15, "one round"): the peer applies them
    /// and answers with its own changes since those heads in the same reply, so a settled pair needs
    /// one exchange instead of three. Automerge's own opening message would carry only heads and a
    /// summary, and the changes a round later.
    ///
    /// If the peer no longer has the shared heads (its state was lost or restored), it answers with a
    /// reset and the usual multi-round protocol takes over from there.
    pub fn generate_eager<D: Document>(&mut self, doc: &mut D) -> Option<Vec<u8>> {
        if self.state.their_heads.is_none() {
            let shared = self.state.shared_heads.clone();
            // As if the peer had just told us it is at the shared heads and has nothing else: what
            // automerge then sends is exactly our changes since them.
            self.state.their_heads = Some(shared.clone());
            self.state.their_need = Some(Vec::new());
            self.state.their_have = Some(vec![sync::Have { last_sync: shared, bloom: Default::default() }]);
        }
        self.generate(doc)
    }

    /// The next message to send, if there is anything to tell the peer (new local changes, or
    /// the opening message of a conversation). `None` means the peer is up to date or a message
    /// is still awaiting its answer.
    pub fn generate<D: Document>(&mut self, doc: &mut D) -> Option<Vec<u8>> {
        doc.automerge_mut().sync().generate_sync_message(&mut self.state).map(sync::Message::encode)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::conflicts::{ConflictField, open_conflicts};
    use crate::index::{Assignment, AssignmentIndex};
    use crate::record::tests::{T0, photo, photo_hash, server_record, stamp};
    use crate::record::{RecordDoc, new_actor_id};
    use crate::schema::{CheckResult, OfficerId};
    use automerge::ActorId;

    /// Runs one connection between a handheld and the server until neither has anything to say,
    /// delivering messages in order, and returns how many messages were exchanged.
    fn connect<D: Document>(
        handheld: &mut D,
        handheld_side: &mut SyncSession,
        server: &mut D,
        server_side: &mut SyncSession,
        rules: &Rules,
    ) -> usize {
        let mut to_server: VecDeque<Vec<u8>> = VecDeque::new();
        let mut to_handheld: VecDeque<Vec<u8>> = VecDeque::new();
        let mut delivered = 0;
        loop {
            if let Some(m) = to_server.pop_front() {
                let received = server_side.receive(server, &m, rules).unwrap();
                to_handheld.extend(received.reply);
            } else if let Some(m) = to_handheld.pop_front() {
                let received = handheld_side.receive(handheld, &m, &Rules::TrustServer).unwrap();
                to_server.extend(received.reply);
            } else {
                to_server.extend(handheld_side.generate(handheld));
                to_handheld.extend(server_side.generate(server));
                if to_server.is_empty() && to_handheld.is_empty() {
                    return delivered;
                }
                continue;
            }
            delivered += 1;
            assert!(delivered < 20, "the sync does not settle");
        }
    }

    /// Delivers the handheld's messages, and the server's answers, until the server refuses one,
    /// and checks that the refusal left the server's session state as it was. The first message
    /// need not carry the new change: a bloom filter false positive can hold it back a round.
    fn until_refused<D: Document>(
        handheld: &mut D,
        handheld_side: &mut SyncSession,
        server: &mut D,
        server_side: &mut SyncSession,
        rules: &Rules,
    ) -> Refusal {
        let mut next = handheld_side.generate(handheld);
        for _ in 0..10 {
            let message = next.take().expect("the handheld still has its change to send");
            let before = server_side.state.clone();
            match server_side.receive(server, &message, rules) {
                Err(refusal) => {
                    assert_eq!(server_side.state, before, "a refusal must leave the session as it was");
                    return refusal;
                }
                Ok(received) => {
                    let reply = received.reply.expect("the server answers a handheld that lags behind");
                    next = handheld_side.receive(handheld, &reply, &Rules::TrustServer).unwrap().reply;
                }
            }
        }
        panic!("the server never received the change");
    }

    struct Officer {
        doc: RecordDoc,
        own_side: SyncSession,
        server_side: SyncSession,
    }

    fn officer(actor: ActorId) -> Officer {
        Officer {
            doc: RecordDoc::replica(actor),
            own_side: SyncSession::new(),
            server_side: SyncSession::new(),
        }
    }

    /// The server's rules for a record these officers are assigned to, as the first one's
    /// connection sees them ([`sent_by`] switches the sender).
    fn record_rules(assigned: &[(&Officer, &str)]) -> Rules {
        let officers =
            assigned.iter().map(|(o, id)| (o.doc.actor().clone(), OfficerId::parse(*id).unwrap())).collect();
        Rules::Record { officers, sender: assigned[0].0.doc.actor().clone(), sealed: false }
    }

    /// The rules as the server applies them to `o`'s connection: `o`'s device is the sender.
    fn sent_by(rules: &Rules, o: &Officer) -> Rules {
        match rules {
            Rules::Record { officers, sealed, .. } => {
                Rules::Record { officers: officers.clone(), sender: o.doc.actor().clone(), sealed: *sealed }
            }
            other => other.clone(),
        }
    }

    fn sync(o: &mut Officer, server: &mut RecordDoc, rules: &Rules) -> usize {
        let rules = sent_by(rules, o);
        connect(&mut o.doc, &mut o.own_side, server, &mut o.server_side, &rules)
    }

    #[test]
    fn two_officers_and_the_server_converge_with_the_conflict_surfaced_on_the_server() {
        let mut server = server_record();
        // The server stores a snapshot and appends what each connection added.
        let mut stored = server.save();
        let mut alice = officer(new_actor_id());
        let mut bob = officer(new_actor_id());
        let rules = record_rules(&[(&alice, "alice"), (&bob, "bob")]);

        sync(&mut alice, &mut server, &rules);
        sync(&mut bob, &mut server, &rules);
        assert_eq!(alice.doc.read().unwrap(), server.read().unwrap());

        // Offline, both inspect the same item and disagree.
        alice.doc.set_check_result("c1", CheckResult::Pass, &stamp("alice", 10)).unwrap();
        let note = crate::schema::NoteId::parse("n1").unwrap();
        alice.doc.put_note(&note, "pallets dry.", &stamp("alice", 10)).unwrap();
        bob.doc.set_check_result("c1", CheckResult::Fail, &stamp("bob", 11)).unwrap();
        bob.doc.attach_photo(&photo_hash(7), &photo(), &stamp("bob", 12)).unwrap();

        let mut messages = 0;
        for _ in 0..2 {
            messages += sync(&mut alice, &mut server, &rules);
            stored.extend(server.save_incremental());
            messages += sync(&mut bob, &mut server, &rules);
            stored.extend(server.save_incremental());
        }
        assert!(messages <= 16, "took {messages} messages");
        let heads = server.heads();
        assert_eq!(alice.doc.heads(), heads);
        assert_eq!(bob.doc.heads(), heads);
        let mut reloaded = RecordDoc::load(&stored, server.actor().clone()).unwrap();
        assert_eq!(reloaded.heads(), heads);

        let conflicts = open_conflicts(&server).unwrap();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field, ConflictField::CheckResult { item_id: "c1".into() });
        let mut values: Vec<_> =
            conflicts[0].values.iter().map(|v| (v.value.clone(), v.actor.clone())).collect();
        values.sort();
        assert_eq!(
            values,
            vec![
                ("fail".to_owned(), bob.doc.actor().clone()),
                ("pass".to_owned(), alice.doc.actor().clone())
            ]
        );
        let record = server.read().unwrap();
        assert_eq!(record.notes[0].text, "pallets dry.");
        assert!(record.photos.contains_key(&photo_hash(7)));
    }

    #[test]
    fn a_refused_message_leaves_the_document_and_the_session_as_they_were() {
        let mut server = server_record();
        let mut alice = officer(new_actor_id());
        let rules = record_rules(&[(&alice, "alice")]);
        sync(&mut alice, &mut server, &rules);

        let heads = server.heads();
        let state = alice.server_side.persist();
        let in_memory = alice.server_side.state.clone();
        let refusal = alice.server_side.receive(&mut server, b"\x42 not automerge", &rules).unwrap_err();
        assert_eq!(refusal.rule(), "malformed_message");
        assert_eq!(alice.server_side.state, in_memory);

        alice.doc.set_check_result("c1", CheckResult::Pass, &stamp("bob", 1)).unwrap();
        let refusal =
            until_refused(&mut alice.doc, &mut alice.own_side, &mut server, &mut alice.server_side, &rules);
        assert_eq!(refusal.rule(), "author_mismatch");
        assert_eq!(server.heads(), heads);
        assert_eq!(alice.server_side.persist(), state);
    }

    #[test]
    fn sessions_resumed_from_persisted_state_catch_up() {
        let mut server = server_record();
        let mut alice = officer(new_actor_id());
        let rules = record_rules(&[(&alice, "alice")]);
        sync(&mut alice, &mut server, &rules);

        alice.doc.set_check_result("c2", CheckResult::NotApplicable, &stamp("alice", 5)).unwrap();
        // The connection drops with a message in flight; both sides restart from what they stored.
        let lost = alice.own_side.generate(&mut alice.doc);
        assert!(lost.is_some());
        alice.own_side = SyncSession::resume(&alice.own_side.persist()).unwrap();
        alice.server_side = SyncSession::resume(&alice.server_side.persist()).unwrap();

        sync(&mut alice, &mut server, &rules);
        assert_eq!(server.heads(), alice.doc.heads());
        assert_eq!(server.read().unwrap().checks["c2"].result, Some(CheckResult::NotApplicable));
    }

    #[test]
    fn an_unreadable_persisted_state_is_reported() {
        assert!(SyncSession::resume(b"\x00garbage").is_err());
    }

    #[test]
    fn the_assignment_index_reaches_the_officer_but_refuses_the_officers_changes() {
        let mut server = AssignmentIndex::create(new_actor_id(), T0).unwrap();
        let assignment = Assignment {
            record_doc_id: "2Ns1qx9vZ4yK8xzwAb5dDp3GqHwT".into(),
            inspection_no: "212345678901234".into(),
            site: "Beilun yard 3".into(),
            deadline: T0 + 86_400_000,
            assigned_at: T0,
        };
        server.assign("ins-1", &assignment, T0).unwrap();

        let mut handheld = AssignmentIndex::replica(new_actor_id());
        let (mut own_side, mut server_side) = (SyncSession::new(), SyncSession::new());
        connect(&mut handheld, &mut own_side, &mut server, &mut server_side, &Rules::ReadOnly);
        assert_eq!(handheld.read().unwrap()["ins-1"], assignment);

        handheld.unassign("ins-1", T0).unwrap();
        let refusal =
            until_refused(&mut handheld, &mut own_side, &mut server, &mut server_side, &Rules::ReadOnly);
        assert_eq!(refusal, Refusal::ReadOnlyDocument);
        assert_eq!(server.read().unwrap().len(), 1);
    }
}
