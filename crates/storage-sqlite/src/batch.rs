//! Several completions and the claims that follow them in one transaction: what a worker
//! pool writes when its loops finish together, at the cost of one commit for all of them;
//! and several claims in one transaction, for a worker that keeps tasks ahead.

use rusqlite::Transaction;

use prismq_domain::ports::{ClaimRequest, ClaimedTask, Handover, HandoverAnswer};
use prismq_domain::PortError;

use crate::combine::{ends_the_batch, exec};
use crate::SqliteStore;

impl SqliteStore {
    /// Blocking [`prismq_domain::ports::TaskQueue::complete_and_claim_many`].
    ///
    /// # Errors
    /// As the port: an error that ends the transaction (busy, an unusable file), with
    /// nothing written.
    pub fn complete_and_claim_many_blocking(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        self.write_shared(self.handovers_write(items))
    }

    /// The async port's batch.
    pub(crate) async fn complete_and_claim_many_async(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        self.write_shared_async(self.handovers_write(items)).await
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::claim_and_start_many`]: up to `max`
    /// claims, each started, in one transaction.
    ///
    /// # Errors
    /// As the port, with nothing claimed.
    pub fn claim_and_start_many_blocking(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.write_shared(self.claims_write(request, max))
    }

    /// The async port's claims of several tasks.
    pub(crate) async fn claim_and_start_many_async(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.write_shared_async(self.claims_write(request, max))
            .await
    }

    /// `max` claims one after another in one transaction, until one finds nothing. Each is
    /// its own claim (its own draw for the weighted strategy); any error undoes them all.
    fn claims_write(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> impl FnMut(&Transaction<'_>) -> Result<Vec<ClaimedTask>, PortError> + Send + 'static {
        let mut claims: Vec<_> = (0..max).map(|_| self.claim_write(request, true)).collect();
        move |tx| {
            let mut claimed = Vec::with_capacity(claims.len());
            for claim in &mut claims {
                match claim(tx)? {
                    Some(c) => claimed.push(c),
                    None => break,
                }
            }
            Ok(claimed)
        }
    }

    /// Each item in the order given, as its own call would run: the completion (a stale
    /// token changes no row, so it needs no savepoint), then the claim in a savepoint, undone
    /// alone when it fails. An error that ends the transaction fails the whole batch.
    fn handovers_write(
        &self,
        items: &[Handover],
    ) -> impl FnMut(&Transaction<'_>) -> Result<Vec<HandoverAnswer>, PortError> + Send + 'static
    {
        let mut steps: Vec<_> = items
            .iter()
            .map(|item| {
                (
                    self.complete_write(&item.lease, item.summary.as_ref()),
                    item.next.as_ref().map(|next| self.claim_write(next, true)),
                )
            })
            .collect();
        move |tx| {
            let mut answers = Vec::with_capacity(steps.len());
            for (complete, claim) in &mut steps {
                match complete(tx) {
                    Ok(()) => {}
                    Err(e @ PortError::LeaseLost { .. }) => {
                        answers.push(Err(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let Some(claim) = claim else {
                    answers.push(Ok(Ok(None)));
                    continue;
                };
                answers.push(Ok(claim_undone_on_failure(tx, claim)?));
            }
            Ok(answers)
        }
    }
}

/// Runs `claim` in a savepoint: a claim that fails is undone alone (its error is the
/// answer) and what came before it stays; an error that ends the transaction is returned.
pub(crate) fn claim_undone_on_failure(
    tx: &Transaction<'_>,
    claim: &mut impl FnMut(&Transaction<'_>) -> Result<Option<ClaimedTask>, PortError>,
) -> Result<Result<Option<ClaimedTask>, PortError>, PortError> {
    exec(tx, "SAVEPOINT prismq_next_claim")?;
    match claim(tx) {
        Ok(next) => {
            exec(tx, "RELEASE prismq_next_claim")?;
            Ok(Ok(next))
        }
        Err(e) if ends_the_batch(&e) => Err(e),
        Err(e) => {
            exec(tx, "ROLLBACK TO prismq_next_claim")?;
            exec(tx, "RELEASE prismq_next_claim")?;
            Ok(Err(e))
        }
    }
}
