//! Images attached to a session's work or its follow-ups. The bytes live
//! only in `attachments`; the session body, the inputs and the stored
//! conversation name each image by its `img_…` reference, so no answer
//! echoes them. They are written in the transaction that queues the
//! session or the follow-up (a refused one leaves none behind), read back
//! one at a time by id, and deleted with their session.

use super::claims::valid_claim;
use super::{now_ms, Missing, Store, StoreError, Tx};
use protocol::image::{validate_images, ImageInput, ImageRef};
use rusqlite::{params, OptionalExtension};

/// An image checked and given its id, not yet written.
pub(crate) struct NewAttachment {
    /// What the session, input or message will carry.
    pub(crate) reference: ImageRef,
    bytes: Vec<u8>,
}

/// Checks the images sent in `field` (count, base64, size, type,
/// dimensions) and gives each an id. Done before the transaction: the
/// decoding is the slow part and needs no lock. The errors name `field`
/// (`source.images`, `images`; the Cloud Agents API's `prompt.images`).
pub(crate) fn prepare(
    field: &str,
    images: &[ImageInput],
) -> Result<Vec<NewAttachment>, StoreError> {
    Ok(validate_images(field, images)
        .map_err(StoreError::invalid)?
        .into_iter()
        .map(|c| NewAttachment {
            reference: c.reference(format!("img_{}", uuid::Uuid::new_v4().simple())),
            bytes: c.bytes,
        })
        .collect())
}

/// How many bytes `images` take once stored.
pub(crate) fn total_bytes(images: &[NewAttachment]) -> i64 {
    images.iter().map(|a| a.bytes.len() as i64).sum()
}

/// The references of `images`, in order.
pub(crate) fn references(images: &[NewAttachment]) -> Vec<ImageRef> {
    images.iter().map(|a| a.reference.clone()).collect()
}

/// Writes `images` as attachments of `session`, in the transaction that
/// stores what names them.
pub(crate) fn insert(
    tx: &Tx<'_>,
    session: &str,
    images: &[NewAttachment],
    now: i64,
) -> Result<(), StoreError> {
    for a in images {
        let r = &a.reference;
        tx.sql.execute(
            "INSERT INTO attachments (id, session_id, media_type, width, height, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.id, session, r.media_type, r.width, r.height, a.bytes, now],
        )?;
    }
    Ok(())
}

/// Deletes every attachment of `session` (with the session itself: a
/// purge calls this in its transaction). Returns how many there were.
pub(crate) fn delete_attachments(tx: &Tx<'_>, session: &str) -> Result<usize, StoreError> {
    Ok(tx.sql.execute(
        "DELETE FROM attachments WHERE session_id = ?1",
        params![session],
    )?)
}

/// An attachment's bytes, as `GET /v1/sessions/{session}/attachments/{id}`
/// serves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// The sniffed media type (`image/png`, …).
    pub(crate) media_type: String,
    /// The bytes.
    pub(crate) data: Vec<u8>,
}

impl Store {
    /// Image `id` of `session`. With `claim`, only while that claim holds
    /// the session (the worker's read); an image of another session is
    /// not found, like one that does not exist.
    pub(crate) fn attachment(
        &self,
        session: &str,
        id: &str,
        claim: Option<&str>,
    ) -> Result<Attachment, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            if let Some(claim) = claim {
                valid_claim(tx, session, claim, now)?;
            }
            tx.sql
                .query_row(
                    "SELECT media_type, data FROM attachments WHERE id = ?1 AND session_id = ?2",
                    params![id, session],
                    |r| {
                        Ok(Attachment {
                            media_type: r.get(0)?,
                            data: r.get(1)?,
                        })
                    },
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::not_found(
                        Missing::Attachment,
                        format!("session {session} has no image {id}; the session's source.images and its follow-ups name its images"),
                    )
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{claimed, new_session, store};
    use super::*;
    use base64::Engine;
    use protocol::conversation::{FollowUp, HumanInput, TakeInput};
    use protocol::image::ImageDimension;
    use protocol::session::SessionState;

    const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    fn png() -> ImageInput {
        ImageInput {
            data: PNG_B64.into(),
            dimension: ImageDimension {
                width: 1,
                height: 1,
            },
        }
    }

    fn count(store: &Store) -> i64 {
        store
            .tx(|tx| {
                Ok(tx
                    .sql
                    .query_row("SELECT COUNT(*) FROM attachments", [], |r| r.get(0))?)
            })
            .unwrap()
    }

    #[test]
    fn queued_images_are_stored_as_attachments_and_named_by_reference() {
        let (_d, store) = store();
        let mut new = new_session();
        new.source.images = vec![png(), png()];
        let s = store.queue(new).unwrap();
        let refs = &s.source.images;
        assert_eq!(refs.len(), 2);
        assert!(refs[0].id.starts_with("img_") && refs[0].id != refs[1].id);
        assert_eq!(
            (refs[0].media_type.as_str(), refs[0].width),
            ("image/png", 1)
        );
        // The stored body names the images; the bytes are only here.
        let got = store.attachment(&s.id, &refs[1].id, None).unwrap();
        assert_eq!(got.media_type, "image/png");
        assert_eq!(
            got.data,
            base64::engine::general_purpose::STANDARD
                .decode(PNG_B64)
                .unwrap()
        );
        let view = serde_json::to_string(&store.get(&s.id).unwrap()).unwrap();
        assert!(!view.contains(PNG_B64), "{view}");
        assert_eq!(store.get(&s.id).unwrap().session.source.images, *refs);
    }

    #[test]
    fn an_image_of_another_session_is_not_found() {
        let (_d, store) = store();
        let mut new = new_session();
        new.source.images = vec![png()];
        let a = store.queue(new).unwrap();
        let b = store.queue(new_session()).unwrap();
        let img = &a.source.images[0].id;
        for (session, id) in [(&b.id, img.as_str()), (&a.id, "img_nope")] {
            let e = store.attachment(session, id, None).unwrap_err();
            assert!(
                matches!(
                    e,
                    StoreError::NotFound {
                        what: Missing::Attachment,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_refused_session_or_image_stores_nothing() {
        let (_d, store) = store();
        let mut bad_image = new_session();
        bad_image.source.images = vec![png(), png(), png()];
        bad_image.source.images[2].data = "not base64!".into();
        let e = store.queue(bad_image).unwrap_err().to_string();
        assert!(
            e.starts_with("source.images[2].data: not valid standard base64"),
            "{e}"
        );
        let mut bad_session = new_session();
        bad_session.workspace = " ".into();
        bad_session.source.images = vec![png()];
        assert!(store.queue(bad_session).is_err());
        assert_eq!(count(&store), 0);
        assert_eq!(store.list(None, 10, None).unwrap(), vec![]);
    }

    #[test]
    fn the_workers_read_needs_a_claim_that_holds() {
        let (_d, store) = store();
        let mut new = new_session();
        new.source.images = vec![png()];
        let s = store.queue(new).unwrap();
        let img = s.source.images[0].id.clone();
        let w = super::super::testing::worker(&store, "r");
        let c = store.claim(&w.worker_id, &s.id, Some(60)).unwrap();
        assert!(store
            .attachment(&s.id, &img, Some(c.claim_id.as_str()))
            .is_ok());
        // Another session's claim does not read this session's image.
        let (_, other) = claimed(&store, 60);
        let e = store
            .attachment(&s.id, &img, Some(other.claim_id.as_str()))
            .unwrap_err();
        assert!(matches!(e, StoreError::ClaimInvalid { .. }), "{e:?}");
    }

    #[test]
    fn follow_up_images_are_stored_with_the_input_and_deleted_with_the_session() {
        let (_d, store) = store();
        let (_, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        store
            .finish(
                &id,
                super::super::Outcome::Complete,
                protocol::platform::Finish {
                    claim_id: c.claim_id.clone(),
                    message: "done".into(),
                },
            )
            .unwrap();
        // A bad image refuses the follow-up: still complete, nothing kept.
        let mut f = FollowUp {
            by: "ann".into(),
            message: "look at this".into(),
            images: vec![png(), png()],
        };
        f.images[1].dimension.width = 0;
        let e = store.follow_up(&id, f.clone()).unwrap_err().to_string();
        assert!(e.starts_with("images[1].dimension.width"), "{e}");
        assert_eq!(
            store.get(&id).unwrap().session.state,
            SessionState::Complete
        );
        assert_eq!(count(&store), 0);
        f.images[1].dimension.width = 1;
        assert_eq!(store.follow_up(&id, f).unwrap().state, SessionState::Queued);
        let w = super::super::testing::worker(&store, "r2");
        let c = store.claim(&w.worker_id, &id, Some(60)).unwrap();
        let input = store
            .next_input(
                &id,
                TakeInput {
                    claim_id: c.claim_id.clone(),
                    after: None,
                },
            )
            .unwrap()
            .input
            .unwrap();
        let HumanInput::FollowUp(q) = input.input else {
            panic!("{input:?}")
        };
        assert_eq!(q.images.len(), 2);
        for r in &q.images {
            assert!(store
                .attachment(&id, &r.id, Some(c.claim_id.as_str()))
                .is_ok());
        }
        assert_eq!(count(&store), 2);
        assert_eq!(store.tx(|tx| delete_attachments(tx, &id)).unwrap(), 2);
        assert_eq!(count(&store), 0);
    }
}
