//! Completing an attempt and claiming the worker's next task in one transaction: what a
//! worker does between two tasks, at the cost of one commit instead of two.

use rusqlite::Transaction;
use serde_json::Value;

use prismq_domain::ports::{ClaimRequest, ClaimedTask};
use prismq_domain::task::Lease;
use prismq_domain::PortError;

use crate::batch::claim_undone_on_failure;
use crate::SqliteStore;

/// The completion's outcome (`Err`: nothing written) and, after a completion, the next
/// claim's.
pub(crate) type NextClaim = Result<Option<ClaimedTask>, PortError>;

impl SqliteStore {
    /// Blocking [`prismq_domain::ports::TaskQueue::complete_and_claim`].
    ///
    /// # Errors
    /// As the port: the completion's error, with nothing written.
    pub fn complete_and_claim_blocking(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
        next: &ClaimRequest,
    ) -> Result<NextClaim, PortError> {
        self.write_shared(self.handover_write(lease, summary, next))
    }

    /// The async port's completion and next claim.
    pub(crate) async fn complete_and_claim_async(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
        next: &ClaimRequest,
    ) -> Result<NextClaim, PortError> {
        self.write_shared_async(self.handover_write(lease, summary, next))
            .await
    }

    /// The completion, then the claim in a savepoint: a claim that fails is undone alone
    /// and the completion still commits. An error that ends the whole transaction (busy, an
    /// unusable file) fails both, so the caller may try the whole step again.
    fn handover_write(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
        next: &ClaimRequest,
    ) -> impl FnMut(&Transaction<'_>) -> Result<NextClaim, PortError> + Send + 'static {
        let mut complete = self.complete_write(lease, summary);
        let mut claim = self.claim_write(next, true);
        move |tx| {
            complete(tx)?;
            claim_undone_on_failure(tx, &mut claim)
        }
    }
}
