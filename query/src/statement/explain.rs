//! `EXPLAIN`: a statement's plan as lines of text.

use profiledb_storage::{Pins, Value};

use super::*;
use crate::ast::Statement;
use crate::error::{Error, Result};
use crate::exec::scan_partitions;
use crate::output::{Output, Rows};
use crate::plan::{Access, plan_select};
use crate::source::DataSource;

pub(super) fn explain(source: &dyn DataSource, stmt: &Statement) -> Result<Output> {
    let lines = match stmt {
        Statement::Select(select) => {
            let mut plan = plan_select(select, &source.bindings().catalog, source.now())?;
            // An index is used once built: say so when it is not yet.
            if let Access::VectorTopK { def, search, .. } = &mut plan.access
                && search.index.is_some()
                && !search.exact
            {
                let view = source.view(Pins::VECTORS)?;
                search.built = view.vectors(*def).map(|t| (t.ivf.is_some(), t.table.len()));
            }
            let partitions = if plan.access == Access::Scan {
                source
                    .view(Pins::NONE)?
                    .partitions(scan_partitions())?
                    .len()
            } else {
                1
            };
            plan.explain(partitions)
        }
        Statement::Insert { event, rows, .. } => {
            vec![format!(
                "Insert: {} event(s) of type {} in one atomic batch",
                rows.len(),
                event
            )]
        }
        Statement::Explain(_) => return Err(Error::invalid("EXPLAIN of EXPLAIN", None)),
        other => vec![format!("Statement: {other}")],
    };
    Ok(Output::Rows(Rows {
        columns: text_columns(&["plan"]),
        rows: lines.into_iter().map(|l| vec![Value::String(l)]).collect(),
    }))
}
