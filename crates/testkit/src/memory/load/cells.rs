//! Reading a loaded row column by column: each value checked against its column's kind and
//! converted, every refusal naming the table, the column and the row.

use std::fmt::Display;

use prismq_domain::ports::dump::{ColumnKind, DumpTable, Value as Cell};
use prismq_domain::ports::LogLevel;
use prismq_domain::{PortError, Timestamp, ValidationError};
use serde_json::Value;

use crate::memory::dump::kind_of;

/// `ms` milliseconds after the epoch, if a timestamp can hold it.
pub(super) fn from_ms(ms: i64) -> Option<Timestamp> {
    let nanos = i32::try_from(ms.rem_euclid(1000) * 1_000_000).ok()?;
    Timestamp::new(ms.div_euclid(1000), nanos).ok()
}

pub(super) const KIND_NAMES: [(ColumnKind, &str); 5] = [
    (ColumnKind::Int, "an integer"),
    (ColumnKind::Text, "text"),
    (ColumnKind::Json, "a JSON document"),
    (ColumnKind::Bool, "a truth value"),
    (ColumnKind::Real, "a number"),
];

pub(super) fn kind_name(k: ColumnKind) -> &'static str {
    KIND_NAMES
        .iter()
        .find(|(kind, _)| *kind == k)
        .map_or("a value", |(_, n)| n)
}

/// One row being loaded, read column by column with errors naming the table, the column
/// and the row's number among the rows of its table this load wrote.
pub(super) struct Cells<'r> {
    table: &'static DumpTable,
    row: &'r [Cell],
    pub(super) n: u64,
}

impl<'r> Cells<'r> {
    pub(super) fn new(
        table: &'static DumpTable,
        row: &'r [Cell],
        n: u64,
    ) -> Result<Self, PortError> {
        if row.len() != table.columns.len() {
            let names: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
            return Err(PortError::Invalid(ValidationError::new(
                table.name,
                format!("row {n} of the load has {} values", row.len()),
                format!(
                    "{} values, one per column: {}",
                    names.len(),
                    names.join(", ")
                ),
            )));
        }
        Ok(Cells { table, row, n })
    }

    pub(super) fn bad(
        &self,
        col: &str,
        problem: impl Display,
        accepted: impl Into<String>,
    ) -> PortError {
        PortError::Invalid(ValidationError::new(
            format!("{}.{col}", self.table.name),
            format!("row {} of the load {problem}", self.n),
            accepted,
        ))
    }

    pub(super) fn cell(&self, col: &str) -> Result<&'r Cell, PortError> {
        let i = self
            .table
            .columns
            .iter()
            .position(|(c, _)| *c == col)
            .ok_or_else(|| self.bad(col, "names a column the table lacks", "its columns"))?;
        let cell = &self.row[i];
        let want = self.table.columns[i].1;
        if kind_of(cell) != want {
            return Err(self.bad(
                col,
                format!("holds {}", kind_name(kind_of(cell))),
                kind_name(want),
            ));
        }
        Ok(cell)
    }

    pub(super) fn need<T>(&self, col: &str, v: Option<T>) -> Result<T, PortError> {
        v.ok_or_else(|| self.bad(col, "holds NULL", "a value: the column is not nullable"))
    }

    pub(super) fn int(&self, col: &str) -> Result<Option<i64>, PortError> {
        match self.cell(col)? {
            Cell::Int(v) => Ok(*v),
            _ => Err(self.bad(col, "is not an integer", "an integer")),
        }
    }

    pub(super) fn req_int(&self, col: &str) -> Result<i64, PortError> {
        let v = self.int(col)?;
        self.need(col, v)
    }

    /// An integer that must fit `T` (counts, pids, ranks).
    pub(super) fn fit<T: TryFrom<i64>>(
        &self,
        col: &str,
        v: i64,
        accepted: &str,
    ) -> Result<T, PortError> {
        T::try_from(v).map_err(|_| self.bad(col, format!("holds {v}"), accepted))
    }

    pub(super) fn text(&self, col: &str) -> Result<Option<String>, PortError> {
        match self.cell(col)? {
            Cell::Text(v) => Ok(v.clone()),
            _ => Err(self.bad(col, "is not text", "text")),
        }
    }

    pub(super) fn req_text(&self, col: &str) -> Result<String, PortError> {
        let v = self.text(col)?;
        self.need(col, v)
    }

    pub(super) fn json(&self, col: &str) -> Result<Option<Value>, PortError> {
        match self.cell(col)? {
            Cell::Json(v) => Ok(v.clone()),
            _ => Err(self.bad(col, "is not JSON", "a JSON document")),
        }
    }

    pub(super) fn req_json(&self, col: &str) -> Result<Value, PortError> {
        let v = self.json(col)?;
        self.need(col, v)
    }

    pub(super) fn req_bool(&self, col: &str) -> Result<bool, PortError> {
        let v = match self.cell(col)? {
            Cell::Bool(v) => *v,
            _ => return Err(self.bad(col, "is not a truth value", "a truth value")),
        };
        self.need(col, v)
    }

    pub(super) fn real(&self, col: &str) -> Result<Option<f64>, PortError> {
        match self.cell(col)? {
            Cell::Real(v) => Ok(*v),
            _ => Err(self.bad(col, "is not a number", "a number")),
        }
    }

    pub(super) fn time(&self, col: &str) -> Result<Option<Timestamp>, PortError> {
        self.int(col)?
            .map(|v| {
                from_ms(v).ok_or_else(|| {
                    self.bad(
                        col,
                        format!("holds {v}, which is no instant"),
                        "milliseconds since 1970-01-01T00:00:00Z of an instant in years -9999 to 9999",
                    )
                })
            })
            .transpose()
    }

    pub(super) fn req_time(&self, col: &str) -> Result<Timestamp, PortError> {
        let v = self.time(col)?;
        self.need(col, v)
    }

    /// A value the domain parses, its refusal moved to this column and row.
    pub(super) fn parsed<T>(
        &self,
        col: &str,
        r: Result<T, ValidationError>,
    ) -> Result<T, PortError> {
        r.map_err(|e| self.bad(col, format!("holds a bad value: {}", e.problem), e.accepted))
    }

    /// A JSON document's conversion, its refusal moved to this column and row.
    pub(super) fn json_as<T>(
        &self,
        col: &str,
        r: Result<T, serde_json::Error>,
        accepted: &str,
    ) -> Result<T, PortError> {
        r.map_err(|e| {
            self.bad(
                col,
                format!("holds a document that does not fit: {e}"),
                accepted,
            )
        })
    }
}

pub(super) fn duplicate(table: &str, n: u64, what: impl Display) -> PortError {
    PortError::Duplicate(format!(
        "{table}: row {n} of the load repeats a key the store already holds: {what}"
    ))
}

pub(super) fn dangling(c: &Cells<'_>, col: &str, what: impl Display, parent: &str) -> PortError {
    c.bad(
        col,
        format!("names {what}, which the store does not hold"),
        format!("the id of a {parent} the store holds (loaded before the rows naming it)"),
    )
}

pub(super) fn level_of(c: &Cells<'_>, s: &str) -> Result<LogLevel, PortError> {
    [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ]
    .into_iter()
    .find(|l| l.as_str() == s)
    .ok_or_else(|| {
        c.bad(
            "level",
            format!("holds {s:?}"),
            "debug, info, warn or error",
        )
    })
}
