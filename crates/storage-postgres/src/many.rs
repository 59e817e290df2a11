//! Several attempts in one statement: the claims a worker keeping tasks ahead makes, and the
//! completions of the tasks it held, so a batch of K tasks costs two round trips and two
//! commits instead of one or two a task.

use std::collections::HashSet;

use serde_json::Value;
use tokio_postgres::types::ToSql;

use prismq_domain::claiming::pick_weighted_level;
use prismq_domain::ports::{
    claim_and_start_one_by_one, complete_and_claim_one_by_one, ClaimRequest, ClaimedTask, Handover,
    HandoverAnswer,
};
use prismq_domain::task::{LeaseToken, Priority};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};

use crate::claims::{
    candidate_types, claimed, level_heads, present_levels, scope, PROBE_LAPSED, START_MANY_FIFO,
    START_MANY_LEVELS, START_MANY_LIFO, START_MANY_PRIORITY,
};
use crate::codec::{get, ms, new_token};
use crate::error::{corrupt, map_err};
use crate::PostgresStore;

/// Completes every attempt in `$2` (ids), `$3` (their lease tokens) and `$4` (their
/// summaries) whose token still holds, at `$1`, and logs each completion: one statement, so
/// all of them or none are written, and a stale token only leaves its own attempt be. It
/// goes through the tasks by type, as the batched claims do, so their count triggers lock
/// `queue_counts` rows in one order. The rows: the ids completed.
const COMPLETE_MANY: &str = "WITH input AS MATERIALIZED (
    SELECT u.tid, u.tok, u.summ
    FROM unnest($2::bigint[], $3::bigint[], $4::jsonb[]) AS u(tid, tok, summ)
    JOIN task_queue q ON q.id = u.tid
    ORDER BY q.type, u.tid
), done AS (
    UPDATE task_queue SET status = 'completed', finished_at = $1, updated_at = $1, summary = summ,
        lease_expires_at = NULL, lease_token = NULL
    FROM input WHERE id = tid AND lease_token = tok AND status IN ('claimed', 'running')
    RETURNING id, summary
), logged AS (
    INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $1, 'info', 'completed', 'completed', NULLIF(summary, 'null'::jsonb)
    FROM done ORDER BY id
)
SELECT id FROM done";

/// The batched claim statement for `strategy`; `None` for WeightedRandom, whose claims
/// draw their levels first ([`START_MANY_LEVELS`]).
fn many_statement(strategy: ClaimingStrategy) -> Option<&'static str> {
    match strategy {
        ClaimingStrategy::Fifo => Some(START_MANY_FIFO),
        ClaimingStrategy::Lifo => Some(START_MANY_LIFO),
        ClaimingStrategy::Priority => Some(START_MANY_PRIORITY),
        ClaimingStrategy::WeightedRandom => None,
    }
}

/// A batch's WeightedRandom draws laid out as [`START_MANY_LEVELS`] binds them: each level
/// drawn (in the order first drawn), how many times, where its places begin in `places`
/// (from 0), and the places (from 1) of every level's draws, level after level.
#[derive(Debug, PartialEq)]
struct Draws {
    levels: Vec<i64>,
    counts: Vec<i64>,
    offsets: Vec<i64>,
    places: Vec<i64>,
}

impl Draws {
    fn of(draws: &[Priority]) -> Draws {
        let mut levels: Vec<i64> = Vec::new();
        let mut by_level: Vec<Vec<i64>> = Vec::new();
        for (place, p) in (1i64..).zip(draws) {
            let level = i64::from(p.get());
            match levels.iter().position(|&l| l == level) {
                Some(i) => by_level[i].push(place),
                None => {
                    levels.push(level);
                    by_level.push(vec![place]);
                }
            }
        }
        let counts = by_level.iter().map(|v| v.len() as i64).collect();
        let offsets = by_level
            .iter()
            .scan(0i64, |at, v| {
                let start = *at;
                *at += v.len() as i64;
                Some(start)
            })
            .collect();
        Draws {
            levels,
            counts,
            offsets,
            places: by_level.concat(),
        }
    }
}

impl PostgresStore {
    /// [`prismq_domain::ports::TaskQueue::claim_and_start_many`]: one statement claims and
    /// starts up to `max` tasks over the worker's task types, each with its own lease: for
    /// FIFO, LIFO and Priority what single claims one after another would take (see
    /// `claims::claim_many_stmt!`), for WeightedRandom each task's level drawn as a single
    /// claim draws it ([`PostgresStore::claim_levels_batch`]). Claims one after another
    /// instead where one statement cannot take that: a claim of one task (`only`) and a
    /// lapsed lease waiting (the single claim rescues it first).
    pub(crate) async fn claim_and_start_batch(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        if let (ClaimingStrategy::WeightedRandom, None, 2..) =
            (request.strategy, request.filter.only, max)
        {
            return self.claim_levels_batch(request, max).await;
        }
        let sql = many_statement(request.strategy);
        let (Some(sql), None, 2..) = (sql, request.filter.only, max) else {
            return claim_and_start_one_by_one(self, request, max).await;
        };
        let now = self.now_ms();
        let expires = now.saturating_add(ms(request.lease_for));
        let (wanted, region) = scope(request);
        let client = self.client().await?;
        let types = candidate_types(&client, &wanted).await?;
        if !types.is_empty() {
            let tokens: Vec<i64> = (0..max).map(|_| new_token().0).collect();
            let (worker, strategy) = (request.worker.as_str(), request.strategy.as_str());
            let args: [&(dyn ToSql + Sync); 8] = [
                &types, &now, &region, &worker, &expires, &tokens, &strategy, &wanted,
            ];
            let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
            let rows = self.query_retrying(&client, &stmt, &args).await?;
            if !rows.is_empty() {
                return claimed_in_order(&rows, request, &tokens, expires);
            }
        }
        self.after_empty_batch(client, request, max, now, &wanted, &region)
            .await
    }

    /// WeightedRandom's batch: reads which levels have eligible tasks (one statement, as a
    /// single claim does), draws `max` levels among them (each draw as a single claim's),
    /// and claims every draw's task in one statement ([`START_MANY_LEVELS`]): a level's
    /// tasks oldest first, as single claims of that level take them. Draws of a level that
    /// had fewer eligible tasks than draws are made again by single claims after it, each
    /// drawing among the levels still holding tasks, as it would have one claim at a time.
    async fn claim_levels_batch(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        let now = self.now_ms();
        let expires = now.saturating_add(ms(request.lease_for));
        let (wanted, region) = scope(request);
        let client = self.client().await?;
        let types = candidate_types(&client, &wanted).await?;
        let present = if types.is_empty() {
            Vec::new()
        } else {
            present_levels(&level_heads(&client, &types, now, &region).await?)
        };
        let drawn: Vec<Priority> = (0..max)
            .filter_map(|_| pick_weighted_level(&present, rand::random()))
            .collect();
        if !drawn.is_empty() {
            let draws = Draws::of(&drawn);
            let tokens: Vec<i64> = (0..max).map(|_| new_token().0).collect();
            let (worker, strategy) = (request.worker.as_str(), request.strategy.as_str());
            let args: [&(dyn ToSql + Sync); 12] = [
                &types,
                &now,
                &region,
                &worker,
                &expires,
                &tokens,
                &strategy,
                &wanted,
                &draws.levels,
                &draws.counts,
                &draws.offsets,
                &draws.places,
            ];
            let stmt = client
                .prepare_cached(START_MANY_LEVELS)
                .await
                .map_err(map_err)?;
            let rows = self.query_retrying(&client, &stmt, &args).await?;
            if !rows.is_empty() {
                drop(client);
                let mut taken = claimed_in_order(&rows, request, &tokens, expires)?;
                if taken.len() < max {
                    let more = claim_and_start_one_by_one(self, request, max - taken.len()).await?;
                    taken.extend(more);
                }
                return Ok(taken);
            }
        }
        self.after_empty_batch(client, request, max, now, &wanted, &region)
            .await
    }

    /// After a batched claim took nothing: nothing was eligible, or a lapsed lease kept the
    /// statement from taking anything. Only a lapsed lease can be claimed then, and single
    /// claims rescue it first.
    async fn after_empty_batch(
        &self,
        client: deadpool_postgres::Object,
        request: &ClaimRequest,
        max: usize,
        now: i64,
        wanted: &[String],
        region: &Option<String>,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        let stmt = client.prepare_cached(PROBE_LAPSED).await.map_err(map_err)?;
        let lapsed = client
            .query_opt(&stmt, &[&now, &wanted, &region, &None::<i64>])
            .await
            .map_err(map_err)?;
        drop(client);
        if lapsed.is_some() {
            return claim_and_start_one_by_one(self, request, max).await;
        }
        Ok(Vec::new())
    }

    /// [`prismq_domain::ports::TaskQueue::complete_and_claim_many`]: one statement completes
    /// every attempt, then, when every item asks the same next claim, one statement claims
    /// and starts as many tasks as attempts were completed
    /// ([`PostgresStore::claim_and_start_batch`]); items asking different claims make theirs
    /// one after another. A batch naming one task twice goes item by item.
    pub(crate) async fn complete_and_claim_batch(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        let ids: Vec<i64> = items.iter().map(|h| h.lease.task_id.0).collect();
        let distinct: HashSet<i64> = ids.iter().copied().collect();
        if items.len() < 2 || distinct.len() != items.len() {
            return complete_and_claim_one_by_one(self, items).await;
        }
        let tokens: Vec<i64> = items.iter().map(|h| h.lease.token.0).collect();
        let summaries: Vec<Option<Value>> = items.iter().map(|h| h.summary.clone()).collect();
        let now = self.now_ms();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(COMPLETE_MANY)
            .await
            .map_err(map_err)?;
        let rows = self
            .query_retrying(&client, &stmt, &[&now, &ids, &tokens, &summaries])
            .await?;
        drop(client);
        let mut completed = HashSet::with_capacity(rows.len());
        for row in &rows {
            completed.insert(get::<i64>(row, 0)?);
        }
        // The items whose completion stands and that ask a claim, in order.
        let claiming: Vec<usize> = (0..items.len())
            .filter(|&i| completed.contains(&ids[i]) && items[i].next.is_some())
            .collect();
        let mut claims: Vec<Option<Result<Option<ClaimedTask>, PortError>>> =
            (0..items.len()).map(|_| None).collect();
        let first = claiming.first().and_then(|&i| items[i].next.as_ref());
        let same = claiming.iter().all(|&i| items[i].next.as_ref() == first);
        match first {
            Some(next) if same => {
                let mut taken = self
                    .claim_and_start_batch(next, claiming.len())
                    .await
                    .map(Vec::into_iter);
                for &i in &claiming {
                    claims[i] = Some(match &mut taken {
                        Ok(tasks) => Ok(tasks.next()),
                        Err(e) => Err(e.clone()),
                    });
                }
            }
            _ => {
                for &i in &claiming {
                    if let Some(next) = &items[i].next {
                        claims[i] = Some(self.claim_task(next, true).await);
                    }
                }
            }
        }
        Ok(items
            .iter()
            .zip(claims)
            .map(|(item, claim)| {
                if completed.contains(&item.lease.task_id.0) {
                    Ok(claim.unwrap_or(Ok(None)))
                } else {
                    Err(PortError::LeaseLost {
                        task_id: item.lease.task_id.0,
                    })
                }
            })
            .collect())
    }
}

/// The tasks a batched claim took, in claim order: each row's last column is its place
/// (from 1), which is also the index of its lease token in `tokens`.
fn claimed_in_order(
    rows: &[tokio_postgres::Row],
    request: &ClaimRequest,
    tokens: &[i64],
    expires: i64,
) -> Result<Vec<ClaimedTask>, PortError> {
    let mut taken = Vec::with_capacity(rows.len());
    for row in rows {
        let rn: i64 = get(row, row.len() - 1)?;
        let token = usize::try_from(rn - 1)
            .ok()
            .and_then(|i| tokens.get(i))
            .ok_or_else(|| corrupt("claim", format!("claim order {rn} of {}", tokens.len())))?;
        let mut c = claimed(row, request, LeaseToken(*token), expires)?;
        c.task.status = TaskStatus::Running;
        taken.push((rn, c));
    }
    taken.sort_unstable_by_key(|(rn, _)| *rn);
    Ok(taken.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_laid_out_level_by_level_with_their_places_in_the_batch() {
        let p = |n| Priority::new(n).unwrap();
        let draws = Draws::of(&[p(10), p(7), p(10), p(2), p(7), p(10)]);
        assert_eq!(
            draws,
            Draws {
                levels: vec![10, 7, 2],
                counts: vec![3, 2, 1],
                offsets: vec![0, 3, 5],
                places: vec![1, 3, 6, 2, 5, 4],
            }
        );
        // The n-th task of a level goes to its n-th draw: places[offset + n] (from 1).
        assert_eq!(draws.places[(draws.offsets[1] + 2 - 1) as usize], 5);
        let none = Draws::of(&[]);
        assert!(none.levels.is_empty() && none.places.is_empty());
    }
}
