//! [`Dump`] and [`Load`] on PostgreSQL: the queue as engine-neutral rows ([`DUMP_TABLES`]),
//! read from one `REPEATABLE READ` snapshot as a row stream cut into batches, and loaded with
//! binary `COPY` in one transaction on a connection the session holds until it commits. A
//! session dropped without committing closes its connection, so the server rolls it back.

use async_trait::async_trait;
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use prismq_domain::ports::dump::{ColumnKind, DumpTable, Row, Value, DUMP_TABLES};
use prismq_domain::ports::{Dump, DumpSink, Load, LoadSession, StorageError};
use prismq_domain::PortError;

use crate::codec::get;
use crate::error::map_err;
use crate::PostgresStore;

fn column_list(t: &DumpTable) -> String {
    t.columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_row(r: &tokio_postgres::Row, t: &DumpTable) -> Result<Row, PortError> {
    t.columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                ColumnKind::Int => Value::Int(get(r, i)?),
                ColumnKind::Text => Value::Text(get(r, i)?),
                ColumnKind::Json => Value::Json(get(r, i)?),
                ColumnKind::Bool => Value::Bool(get(r, i)?),
                ColumnKind::Real => Value::Real(get(r, i)?),
            })
        })
        .collect()
}

#[async_trait]
impl Dump for PostgresStore {
    async fn dump(
        &self,
        batch_rows: usize,
        sink: &mut dyn DumpSink,
    ) -> Result<Vec<u64>, StorageError> {
        let batch = batch_rows.max(1);
        let mut client = self.client().await?;
        // One snapshot for every table.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(map_err)?;
        let mut counts = Vec::with_capacity(DUMP_TABLES.len());
        for (ti, t) in DUMP_TABLES.iter().enumerate() {
            let mut key = t.key.join(", ");
            if t.name == "task_logs" {
                key.push_str(", id");
            }
            let sql = format!("SELECT {} FROM {} ORDER BY {key}", column_list(t), t.name);
            let stream = tx
                .query_raw(&sql, std::iter::empty::<i64>())
                .await
                .map_err(map_err)?;
            pin_mut!(stream);
            let mut n = 0u64;
            let mut rows = Vec::with_capacity(batch);
            while let Some(r) = stream.try_next().await.map_err(map_err)? {
                rows.push(read_row(&r, t)?);
                n += 1;
                if rows.len() == batch {
                    sink.write(ti, std::mem::replace(&mut rows, Vec::with_capacity(batch)))
                        .await?;
                }
            }
            if !rows.is_empty() {
                sink.write(ti, rows).await?;
            }
            counts.push(n);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(counts)
    }
}

/// A load into PostgreSQL in progress: a pooled connection inside `BEGIN`.
struct PostgresLoad {
    client: Option<deadpool_postgres::Object>,
}

impl Drop for PostgresLoad {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Never hand a connection inside an open transaction back to the pool: closing
            // it makes the server roll the load back.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl PostgresLoad {
    fn client(&self) -> Result<&deadpool_postgres::Object, StorageError> {
        self.client
            .as_ref()
            .ok_or_else(|| StorageError::Port(PortError::Unavailable("the load has ended".into())))
    }
}

async fn counts(c: &deadpool_postgres::Object) -> Result<Vec<u64>, PortError> {
    let mut out = Vec::with_capacity(DUMP_TABLES.len());
    for t in DUMP_TABLES {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])
            .await
            .map_err(map_err)?
            .get(0);
        out.push(u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

#[async_trait]
impl Load for PostgresStore {
    async fn begin_load(&self) -> Result<Box<dyn LoadSession>, StorageError> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(map_err)?;
        Ok(Box::new(PostgresLoad {
            client: Some(client),
        }))
    }
}

#[async_trait]
impl LoadSession for PostgresLoad {
    fn engine(&self) -> &'static str {
        "PostgreSQL"
    }

    async fn existing_rows(&mut self) -> Result<u64, StorageError> {
        Ok(counts(self.client()?).await?.iter().sum())
    }

    async fn clear(&mut self) -> Result<(), StorageError> {
        let c = self.client()?;
        for t in DUMP_TABLES.iter().rev() {
            c.execute(&format!("DELETE FROM {}", t.name), &[])
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        let t = &DUMP_TABLES[table];
        let c = self.client()?;
        let types: Vec<Type> = t
            .columns
            .iter()
            .map(|(_, k)| match k {
                ColumnKind::Int => Type::INT8,
                ColumnKind::Text => Type::TEXT,
                ColumnKind::Json => Type::JSONB,
                ColumnKind::Bool => Type::BOOL,
                ColumnKind::Real => Type::FLOAT8,
            })
            .collect();
        let sink = c
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN BINARY",
                t.name,
                column_list(t)
            ))
            .await
            .map_err(map_err)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for row in &rows {
            let values: Vec<&(dyn ToSql + Sync)> = row
                .iter()
                .map(|v| match v {
                    Value::Int(x) => x as &(dyn ToSql + Sync),
                    Value::Text(x) => x as &(dyn ToSql + Sync),
                    Value::Json(x) => x as &(dyn ToSql + Sync),
                    Value::Bool(x) => x as &(dyn ToSql + Sync),
                    Value::Real(x) => x as &(dyn ToSql + Sync),
                })
                .collect();
            writer.as_mut().write(&values).await.map_err(map_err)?;
        }
        writer.finish().await.map_err(map_err)?;
        Ok(())
    }

    async fn counts(&mut self) -> Result<Vec<u64>, StorageError> {
        Ok(counts(self.client()?).await?)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let c = self.client()?;
        for t in DUMP_TABLES.iter().filter(|t| t.generated_id) {
            c.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce((SELECT max(id) FROM {0}), 0) + 1, false)",
                    t.name
                ),
                &[],
            )
            .await
            .map_err(map_err)?;
        }
        c.batch_execute("COMMIT").await.map_err(map_err)?;
        // Committed: the connection may go back to the pool.
        drop(self.client.take());
        Ok(())
    }
}
